"""A tiny shapes-world VLM and a Synth² generator trained against its vision tower, shared by the module."""

from __future__ import annotations

import pytest

from tests.hydra_utils import compose_app

# A generator run of seconds: 16 real scenes, a one-layer encoder, 20 steps. "~base": the targets come from the
# fresh tiny model's own vision tower, which the training tests' models (also "~base") share.
GENERATOR = ["~base", "real.num_scenes=16", "real.captions_per_scene=2", "real.num_val_scenes=8",
             "generator.hidden=32", "generator.layers=1", "generator.heads=2", "train.steps=20",
             "train.batch_size=16", "train.warmup_steps=2"]


@pytest.fixture(scope="session")
def synth2_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("synth2_cache")


@pytest.fixture(scope="session")
def generator_dir(synth2_cache, tmp_path_factory):
    from vlmalign.pipelines.synth2.cli import train_generator

    out = tmp_path_factory.mktemp("generator_run")
    cfg = compose_app("synth2_generator", [*GENERATOR, f"paths.cache_dir={synth2_cache}"], out)
    return train_generator(cfg)


@pytest.fixture()
def backbone(synth2_cache, tmp_path):
    """The generator's model as the config builds it (conf/model/tiny_llava.yaml), fresh for each test."""
    from hydra.utils import instantiate

    cfg = compose_app("synth2_generator", [*GENERATOR, f"paths.cache_dir={synth2_cache}"], tmp_path)
    return instantiate(cfg.model)
