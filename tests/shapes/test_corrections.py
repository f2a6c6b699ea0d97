"""RLHF-V-style minimal corrections of a model's caption, and the on-policy pairs built from them."""

from __future__ import annotations

import random

import pytest

from vlmalign.data.shapes import SHAPES, Scene, ShapeObject
from vlmalign.data.shapes.corrections import correct_shape_errors

SCENE = Scene("s", (ShapeObject("circle", "red", "large", "top left"),
                    ShapeObject("square", "blue", "small", "center")))


@pytest.mark.parametrize(("caption", "expected"), [
    # one wrong shape, at a cell where an object of that colour is: only that word changes
    ("a large red diamond at the top left and a small blue square at the center .",
     "a large red circle at the top left and a small blue square at the center ."),
    ("the image shows two objects : a large red triangle at the top left , a small blue circle at the center .",
     "the image shows two objects : a large red circle at the top left , a small blue square at the center ."),
    ("a large red circle at the top left .", None),               # faithful: no pair
    ("a large green diamond at the top left .", None),            # wrong colour: not a shape error
    ("a large red diamond at the bottom .", None),                # no red object at that cell
    ("a large red diamond .", None),                              # no position to anchor the correction
])
def test_only_shape_errors_at_a_matching_cell_are_corrected(caption, expected):
    assert correct_shape_errors(caption, SCENE) == expected


def test_onpolicy_pairs_are_built_once_from_the_policy_captions(tiny_checkpoint, tmp_path, monkeypatch):
    from vlmalign.data import onpolicy_pairs
    from vlmalign.data.datamodule import ShapesDataModule
    from vlmalign.data.shapes import describe
    from vlmalign.models.loader import load_backbone

    backbone = load_backbone(str(tiny_checkpoint))
    datamodule = ShapesDataModule(backbone.processor, views=("chosen", "rejected"), task="preference",
                                  pair_kind="onpolicy", onpolicy_cache_dir=str(tmp_path), num_train_scenes=12,
                                  num_val_scenes=4, world={"image_size": 32}, max_length=80, batch_size=4)
    calls = []

    def fake_generate(backbone, images, prompts, max_new_tokens, batch_size):  # a model that swaps one shape
        scenes = datamodule.train_set.scenes if len(images) == 12 else datamodule.val_set.scenes
        calls.append(len(images))
        captions = []
        for scene in scenes:
            first, present = scene.objects[0], {o.identity for o in scene.objects}
            wrong = next(s for s in SHAPES if (first.color, s) not in present)
            captions.append(describe(scene, random.Random(0)).replace(f"{first.color} {first.shape}",
                                                                      f"{first.color} {wrong}", 1))
        return captions

    monkeypatch.setattr(onpolicy_pairs, "generate_responses", fake_generate)
    injected = datamodule.identity()
    datamodule.prepare_from_policy(backbone)
    pairs = datamodule.train_set.pairs
    assert len(pairs) == 12 and all(p["rejected"] != p["chosen"] for p in pairs)
    for pair in pairs:  # the chosen caption is the faithful one: exactly one word differs
        assert sum(a != b for a, b in zip(pair["chosen"].split(), pair["rejected"].split())) == 1
    example = datamodule.train_set[0]
    assert set(example.responses) == {"chosen", "rejected"}
    assert datamodule.identity()["onpolicy"]["pairs"]["train"] == len(pairs) and "onpolicy" not in injected
    again = ShapesDataModule(backbone.processor, views=("chosen", "rejected"), task="preference", pair_kind="onpolicy",
                             onpolicy_cache_dir=str(tmp_path), num_train_scenes=12, num_val_scenes=4,
                             world={"image_size": 32}, max_length=80, batch_size=4)
    again.prepare_from_policy(backbone)  # read back from the cache: no second captioning pass
    assert len(calls) == 2 and again.train_set.pairs == pairs
