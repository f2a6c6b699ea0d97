"""The text-to-embedding generator: its output is what the vision tower gives, it trains, it round-trips."""

from __future__ import annotations

import json

import pytest
import torch

from vlmalign.data.shapes import generate_scenes, render_scene
from vlmalign.errors import ConfigError
from vlmalign.models.synth2_generator import load_generator
from vlmalign.pipelines.synth2.real_pairs import real_pairs, vision_embeddings_of
from vlmalign.pipelines.synth2.train_generator import evaluate_generator, fit_generator, generator_spec


def test_output_shape_and_dtype_match_the_vision_tower(backbone, generator_dir):
    generator = load_generator(generator_dir)
    scenes = generate_scenes("val", 3)
    real = vision_embeddings_of(backbone, [render_scene(s, 96) for s in scenes])
    synthetic = generator.embed(["a large red circle at the top left .", "a small blue square at the center .",
                                 "the image shows two objects : a red circle and a blue square ."])
    assert synthetic.shape == real.shape == (3, 9, 128)  # 3x3 patches of the 128-wide tower
    assert synthetic.dtype == real.dtype
    # ... and the projector takes it as it takes the tower's output: same image features per image
    with torch.no_grad():
        from_pixels = backbone.image_features({"pixel_values": backbone.processor.image_processor(
            [render_scene(s, 96) for s in scenes], return_tensors="pt")["pixel_values"]})
        from_embeddings = backbone.image_features({"vision_embeddings": synthetic})
    assert [f.shape for f in from_embeddings] == [f.shape for f in from_pixels]
    assert [f.dtype for f in from_embeddings] == [f.dtype for f in from_pixels]


def test_vision_embeddings_are_the_projector_input(backbone):
    pixels = backbone.processor.image_processor([render_scene(generate_scenes("val", 1)[0], 96)],
                                                return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        embedding = backbone.vision_embeddings(pixels)
        assert torch.allclose(backbone.project_embeddings(embedding)[0], backbone.encode_images(pixels)[0])


def test_checkpoint_records_what_it_was_trained_on_and_reloads_identically(generator_dir):
    meta = json.loads((generator_dir / "meta.json").read_text())
    assert meta["real"]["num_scenes"] == 16 and len(meta["vision_tower_digest"]) == 16
    assert set(meta["held_out"]) == {"mse", "r2", "retrieval_top1", "retrieval_chance"}
    first, second = load_generator(generator_dir), load_generator(generator_dir)
    captions = ["a small green triangle at the bottom right ."]
    assert torch.equal(first.embed(captions), second.embed(captions))


def test_fitting_lowers_the_loss_and_is_deterministic(backbone):
    pairs = real_pairs(backbone, generate_scenes("train", 12), 96, captions_per_scene=2, seed=0)
    tokenizer = backbone.processor.tokenizer
    spec = generator_spec(tokenizer, pairs, hidden=32, layers=1, heads=2)
    fit = dict(steps=30, batch_size=8, lr=3e-3, weight_decay=0.0, warmup_steps=0, seed=0, log_every=29)
    model, curve = fit_generator(tokenizer, pairs, spec, **fit)
    again, _ = fit_generator(tokenizer, pairs, spec, **fit)
    assert curve[-1]["loss"] < 0.9 * curve[0]["loss"]
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    scores = evaluate_generator(model, tokenizer, pairs)
    assert scores["r2"] > 0.0 and 0.0 <= scores["retrieval_top1"] <= 1.0  # better than the mean embedding


def test_a_directory_that_is_no_generator_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"not a Synth² generator checkpoint.*generator.json"):
        load_generator(tmp_path)
