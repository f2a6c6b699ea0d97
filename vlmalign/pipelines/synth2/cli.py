"""``vlmalign-synth2-generator``: train Synth²'s text-to-embedding generator and write its checkpoint.

Targets are the VLM's vision-tower embeddings of real rendered scenes (``real_pairs``), the tower being the one
the Synth² run will keep frozen (``base=sft_shapes_vision`` by default); its digest goes into ``meta.json`` so a
run with another tower refuses the checkpoint. The checkpoint directory is written whole or not at all.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from vlmalign.data.shapes import world_spec
from vlmalign.errors import ConfigError
from vlmalign.models.synth2_generator import save_generator
from vlmalign.models.weights import weights_digest
from vlmalign.pipelines.base_model import resolve_base
from vlmalign.pipelines.synth2.real_pairs import real_pairs
from vlmalign.pipelines.synth2.train_generator import evaluate_generator, fit_generator, generator_spec
from vlmalign.utils.cli import cli_task
from vlmalign.utils.compose import CONFIG_DIR
from vlmalign.utils.files import atomic_directory
from vlmalign.utils.instantiate import build
from vlmalign.utils.reporting import print_metrics_table

log = logging.getLogger("vlmalign")


def train_generator(cfg: DictConfig) -> Path:
    """Fit the generator described by ``cfg``; returns its checkpoint directory."""
    started = time.perf_counter()
    real = cfg.real
    backbone = build(cfg.model, "model", **resolve_base(cfg))
    world = world_spec(real.world, "real.world")
    train = real_pairs(backbone, world.scenes("train", real.num_scenes), world.image_size, real.captions_per_scene,
                       cfg.seed)
    held_out = real_pairs(backbone, world.scenes("val", real.num_val_scenes), world.image_size, 1, cfg.seed)
    tokenizer = backbone.processor.tokenizer
    try:
        spec = generator_spec(tokenizer, train, **cfg.generator)
    except TypeError as error:
        raise ConfigError(f"generator: {error}; allowed keys: hidden, layers, heads, max_text_length, "
                          "dropout") from error
    model, curve = fit_generator(tokenizer, train, spec, seed=cfg.seed, **cfg.train)
    scores = {"train": evaluate_generator(model, tokenizer, train),
              "held_out": evaluate_generator(model, tokenizer, held_out)}
    meta = {"real": OmegaConf.to_container(real, resolve=True), "train": OmegaConf.to_container(cfg.train),
            "seed": cfg.seed, "vision_tower_digest": weights_digest(backbone.core.model.vision_tower),
            "model": backbone.name, **scores, "curve": curve, "time_s": time.perf_counter() - started}
    target = Path(cfg.paths.output_dir) / "generator"
    with atomic_directory(target) as scratch:
        save_generator(scratch, model, tokenizer, meta)
    print_metrics_table(scores, title=f"Synth² generator: {real.num_scenes} real scenes, {cfg.train.steps} steps")
    log.info("generator written to %s (%.0f s)", target, meta["time_s"])
    return target


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="synth2_generator")
@cli_task("vlmalign-synth2-generator")
def main(cfg: DictConfig) -> None:
    train_generator(cfg)


if __name__ == "__main__":
    main()
