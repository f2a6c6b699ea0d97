"""The shapes SFT data's ``domain`` knob: Branch-Train-MiX's per-domain expert data (arXiv 2403.07816, §2.1)."""

from __future__ import annotations

import pytest

from tests.hydra_utils import compose_train
from vlmalign.data.shapes import CAPTION_PROMPTS, WorldSpec
from vlmalign.data.shapes_sft import ShapesSFTDataset
from vlmalign.errors import ConfigError
from vlmalign.utils.instantiate import build
from vlmalign.validation import validate_run_config

QUESTION_STARTS = {"counting": ("how many",), "spatial": ("where is", "how many"),
                   "attribute_existence": ("what color", "what size", "is there")}


@pytest.mark.parametrize("domain", ["captioning", *QUESTION_STARTS])
def test_each_domain_holds_only_its_task(domain):
    dataset = ShapesSFTDataset(encoder=None, split="train", num_scenes=40, world=WorldSpec(), domain=domain)
    prompts = [dataset.text_for(i)[1] for i in range(len(dataset))]
    if domain == "captioning":
        assert set(prompts) <= set(CAPTION_PROMPTS)
    else:
        assert all(p.startswith(QUESTION_STARTS[domain]) for p in prompts)
    if domain == "spatial":  # the count fallback is only for scenes without a unique object
        assert sum(p.startswith("where is") for p in prompts) > 0.9 * len(prompts)


def test_no_domain_keeps_the_mixture():
    mixed = ShapesSFTDataset(encoder=None, split="train", num_scenes=10, world=WorldSpec())
    assert [mixed.text_for(i) for i in range(20)] == [
        ShapesSFTDataset(encoder=None, split="train", num_scenes=10, world=WorldSpec(), domain=None).text_for(i)
        for i in range(20)]


def test_an_unknown_domain_is_a_config_error_before_anything_is_built(tmp_path):
    with pytest.raises(ValueError, match="domain='art' is not one of"):
        ShapesSFTDataset(encoder=None, split="train", num_scenes=4, world=WorldSpec(), domain="art")
    cfg = compose_train(["experiment=btx/branch", "data.domain=art"], tmp_path)
    with pytest.raises(ConfigError, match="data.domain='art' is not one of"):
        validate_run_config(cfg, build(cfg.objective, "objective"), read_data=False)
