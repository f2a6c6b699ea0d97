"""The pieces Synth² adds elsewhere: the pooled NLL, exact-scene match, and partial/frozen model loading."""

from __future__ import annotations

import math

import pytest
import torch

from vlmalign.data.shapes import Scene, ShapeObject
from vlmalign.errors import ConfigError
from vlmalign.eval.hallucination import caption_metrics
from vlmalign.models.loader import tiny_llava_backbone
from vlmalign.objectives.functional import mixed_source_nll


def test_mixed_source_nll_by_hand():
    real, real_n = torch.tensor([-2.0, -4.0]), torch.tensor([2, 2])
    syn, syn_n = torch.tensor([-6.0]), torch.tensor([3])
    assert mixed_source_nll(real, real_n, syn, syn_n).item() == pytest.approx(12 / 7)  # pooled token mean
    assert mixed_source_nll(real, real_n, syn, syn_n, 0.5).item() == pytest.approx((6 + 3) / (4 + 1.5))
    assert mixed_source_nll(real, real_n, syn, syn_n, 0.0).item() == pytest.approx(6 / 4)  # real only
    empty = torch.zeros(0)
    assert mixed_source_nll(empty, empty, syn, syn_n).item() == pytest.approx(2.0)  # a batch without real rows
    assert not math.isnan(mixed_source_nll(empty, empty, empty, empty).item())


SCENE = Scene("s", (ShapeObject("circle", "red", "large", "top left"),
                    ShapeObject("square", "blue", "small", "center")))


@pytest.mark.parametrize("caption, exact", [
    ("a large red circle at the top left and a small blue square at the center .", True),
    ("at the center there is a small blue square and at the top left there is a large red circle .", True),
    ("there are two objects : a large red circle in the top left and a small blue square in the center .", True),
    ("a large red circle at the top left .", False),  # misses the square
    ("a large red circle at the top left and a small blue square at the right .", False),  # wrong position
    ("a large red circle at the top left , a small blue square at the center and a green triangle .", False),
    ("there are three objects : a large red circle in the top left and a small blue square in the center .", False),
])
def test_exact_scene_match_on_hand_written_captions(caption, exact):
    assert caption_metrics([(SCENE, caption)])["exact_match"] == float(exact)


def test_modules_from_takes_only_those_weights_and_freeze_stops_them(tmp_path):
    cache = str(tmp_path / "models")
    donor = tiny_llava_backbone(cache, seed=1)
    donor.save_pretrained(tmp_path / "donor")
    fresh = tiny_llava_backbone(cache, seed=0)
    mixed = tiny_llava_backbone(cache, seed=0, freeze=["model.vision_tower"],
                                modules_from={"source": str(tmp_path / "donor"), "modules": ["model.vision_tower"]})
    donor_sd, fresh_sd = donor.core.state_dict(), fresh.core.state_dict()
    for name, tensor in mixed.core.state_dict().items():
        source = donor_sd if name.startswith("model.vision_tower.") else fresh_sd
        assert torch.equal(tensor, source[name]), name
    assert not any(p.requires_grad for p in mixed.core.model.vision_tower.parameters())
    assert all(p.requires_grad for p in mixed.core.model.language_model.parameters())


def test_a_module_name_that_matches_nothing_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"model.freeze: 'model.vision' names no weights.*model.vision_tower"):
        tiny_llava_backbone(str(tmp_path), freeze=["model.vision"])
