"""The vision tower's per-cell attribute pre-training (vlmalign/models/tower_pretraining.py) and its bad input."""

import pytest
import torch

from vlmalign.data.shapes import Scene, ShapeObject
from vlmalign.data.shapes.world import COLORS, SHAPES, SIZES
from vlmalign.errors import ConfigError
from vlmalign.models.loader import build_shapes_tokenizer, ensure_tiny_llava_checkpoint
from vlmalign.models.projector_alignment import align_projector, word_targets
from vlmalign.models.tiny_llava import TinyLlavaSpec, build_tiny_llava
from vlmalign.models.tower_pretraining import HEADS, cell_features, cell_targets, pretrain_tower

# 48 px / patch 16: a 3x3 patch grid, one token per cell, as the default 96 / 32
SMALL = dict(image_size=48, patch_size=16, vision_hidden=32, vision_layers=1, vision_heads=2, text_hidden=32,
             text_layers=1, text_heads=2, max_positions=128)


def test_cell_targets_put_each_object_in_its_cell_and_leave_the_others_empty():
    scene = Scene("s", (ShapeObject("circle", "blue", "small", "top left"),
                        ShapeObject("diamond", "purple", "large", "bottom right")))
    targets = cell_targets([scene])
    assert targets.shape == (1, 9, len(HEADS))
    # shape, colour, size, category = index + 1 (SHAPES, COLORS, SIZES; category = colour * 4 + shape)
    assert targets[0, 0].tolist() == [1, 3, 1, 2 * 4 + 0 + 1]
    assert targets[0, 8].tolist() == [4, 5, 2, 4 * 4 + 3 + 1]
    assert targets[0, 1:8].eq(0).all()


def test_cell_features_average_each_cells_patches():
    patches = torch.arange(36, dtype=torch.float).view(1, 36, 1)  # a 6x6 grid: 2x2 patches per cell
    cells = cell_features(patches)
    assert cells.shape == (1, 9, 1)
    assert cells[0, 0, 0] == (0 + 1 + 6 + 7) / 4 and cells[0, 8, 0] == (28 + 29 + 34 + 35) / 4


def test_pretraining_trains_the_tower_only_deterministically():
    def pretrained():
        model, processor = build_tiny_llava(TinyLlavaSpec(**SMALL), build_shapes_tokenizer(), seed=0)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        report = pretrain_tower(model, processor.image_processor, 48, steps=40, seed=0)
        return model, before, report

    model, before, report = pretrained()
    assert set(report) == {f"{name}_accuracy" for name in HEADS} | {"empty_accuracy"}
    assert all(0.0 <= value <= 1.0 for value in report.values())
    after = model.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed and all(k.startswith("model.vision_tower.") for k in changed)  # projector and LM untouched
    again, _, report_again = pretrained()
    assert report_again == report
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), after.values()))


def test_a_patch_grid_that_does_not_tile_the_cells_is_refused_before_anything_is_built(tmp_path):
    spec = TinyLlavaSpec(**{**SMALL, "image_size": 64, "patch_size": 8}, tower_pretraining_steps=10)
    with pytest.raises(ConfigError, match=r"model.image_size=64 / model.patch_size=8 = 8 patches a side"):
        ensure_tiny_llava_checkpoint(tmp_path, spec)
    assert not any(tmp_path.iterdir())


def test_word_targets_sum_each_objects_size_colour_and_shape_embeddings():
    embeddings = torch.randn(50, 8)
    ids = {word: i for i, word in enumerate((*SIZES, *COLORS, *SHAPES))}
    scene = Scene("s", (ShapeObject("circle", "blue", "small", "top left"),))
    targets = word_targets([scene], embeddings, ids)
    assert torch.equal(targets[0, 0], embeddings[[ids["small"], ids["blue"], ids["circle"]]].sum(0))
    assert targets[0, 1:].eq(0).all()


def test_projector_alignment_trains_the_projector_only_towards_the_words_deterministically():
    def aligned():
        model, processor = build_tiny_llava(TinyLlavaSpec(**SMALL), build_shapes_tokenizer(), seed=0)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        report = align_projector(model, processor.tokenizer, processor.image_processor, 48, steps=60, seed=0)
        return model, before, report

    model, before, report = aligned()
    after = model.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed and all(k.startswith("model.multi_modal_projector.") for k in changed)
    assert report["nearest_word_accuracy"] > 3 / 40  # well above chance among the 40 (size, colour, shape) targets
    again, _, report_again = aligned()
    assert report_again == report
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), after.values()))


def test_projector_alignment_needs_one_patch_per_cell(tmp_path):
    spec = TinyLlavaSpec(**{**SMALL, "image_size": 96, "patch_size": 16}, projector_alignment_steps=10)
    with pytest.raises(ConfigError, match=r"needs one patch per grid cell: .* = 6 patches a side"):
        ensure_tiny_llava_checkpoint(tmp_path, spec)
    assert not any(tmp_path.iterdir())
