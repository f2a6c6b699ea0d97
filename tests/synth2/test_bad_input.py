"""Every Synth² mistake a user can make is a named error, not a traceback from inside a library."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from tests.hydra_utils import compose_app
from tests.synth2.conftest import GENERATOR
from tests.synth2.test_mix_training import datamodule
from vlmalign.data.encoding import SequenceEncoder
from vlmalign.errors import ConfigError, DataError
from vlmalign.models.loader import tiny_llava_backbone
from vlmalign.models.synth2_generator import GeneratorSpec, TextToEmbeddingGenerator, load_generator
from vlmalign.objectives import Synth2CaptioningTerm
from vlmalign.pipelines.synth2.cli import train_generator


def test_real_slots_without_real_scenes_and_unknown_views_are_named(backbone, generator_dir):
    with pytest.raises(ConfigError, match="data.num_real_scenes=0"):
        datamodule(backbone, generator_dir, ratio=0.5, num_real_scenes=0)
    datamodule(backbone, generator_dir, ratio=1.0, num_real_scenes=0)  # all synthetic: no real slot to fill
    with pytest.raises(ConfigError, match=r"needs views \['rejected'\].*use objective=synth2"):
        datamodule(backbone, generator_dir, views=("chosen", "rejected"))
    with pytest.raises(ConfigError, match="world: min_objects=3, max_objects=2"):
        datamodule(backbone, generator_dir, world={"min_objects": 3, "max_objects": 2})
    with pytest.raises(ConfigError, match="world: image_size=16 is out of range"):
        datamodule(backbone, generator_dir, world={"image_size": 16})


def test_a_damaged_generator_spec_is_named(tmp_path, generator_dir):
    shutil.copytree(generator_dir, tmp_path / "g")
    (tmp_path / "g" / "generator.json").write_text(json.dumps({"vocab_size": 10, "colour": "red"}))
    with pytest.raises(ConfigError, match="generator.json: not a generator spec"):
        load_generator(tmp_path / "g")


def test_generator_sizes_and_caption_length_are_checked():
    with pytest.raises(ConfigError, match="generator.hidden=30 must be divisible by generator.heads=4"):
        GeneratorSpec(vocab_size=10, pad_token_id=0, num_tokens=4, embedding_dim=8, hidden=30, heads=4)
    model = TextToEmbeddingGenerator(GeneratorSpec(vocab_size=10, pad_token_id=0, num_tokens=4, embedding_dim=8,
                                                   hidden=8, layers=1, heads=2, max_text_length=5))
    with pytest.raises(ConfigError, match="6 tokens exceeds generator.max_text_length=5"):
        model(torch.ones(1, 6, dtype=torch.long), torch.ones(1, 6, dtype=torch.long))


def test_an_embedding_for_another_model_is_a_data_error(backbone):
    from PIL import Image

    encoder = SequenceEncoder(backbone.processor, 160)
    with pytest.raises(DataError, match="the embedding has 16 tokens but the model's prompt has 9"):
        encoder.encode_embedded("s", torch.zeros(16, 128), "describe the image .", {"chosen": "a red circle ."},
                                Image.new("RGB", (96, 96)))


def test_a_family_without_a_plain_projector_refuses_embeddings(backbone):
    backbone.core.config.model_type = "qwen2_vl"  # its merger sits inside the vision tower
    with pytest.raises(ConfigError, match="'qwen2_vl' does not take vision-space embeddings"):
        backbone.image_features({"vision_embeddings": torch.zeros(1, 64, 128)})


def test_modules_from_a_missing_or_different_checkpoint_is_named(tmp_path):
    cache, tower = str(tmp_path / "models"), ["model.vision_tower"]
    with pytest.raises(ConfigError, match="modules_from.source=.*could not be loaded"):
        tiny_llava_backbone(cache, modules_from={"source": str(tmp_path / "nowhere"), "modules": tower})
    tiny_llava_backbone(cache, vision_hidden=64).save_pretrained(tmp_path / "narrow")
    with pytest.raises(ConfigError, match=r"modules_from: model.vision_tower.* in this model \(a different archi"):
        tiny_llava_backbone(cache, modules_from={"source": str(tmp_path / "narrow"), "modules": tower})


def test_a_negative_synthetic_weight_is_refused():
    with pytest.raises(ValueError, match="synthetic_weight=-0.5 must be >= 0"):
        Synth2CaptioningTerm(synthetic_weight=-0.5)


def test_an_unknown_generator_key_is_named(tmp_path, synth2_cache):
    cfg = compose_app("synth2_generator", [*GENERATOR, f"paths.cache_dir={synth2_cache}", "+generator.width=3"],
                      tmp_path)
    with pytest.raises(ConfigError, match="generator: .*width.*allowed keys: hidden, layers"):
        train_generator(cfg)
    assert not (tmp_path / "generator").exists()  # nothing half-written
