"""The SFT base every preference run starts from: a stage of its own, trained once, cached, shared.

The base is a whole training job composed from its own overrides (``conf/base/*.yaml``), independent of the
caller's overrides; the caller (``vlmalign-train``, RLAIF-V, Synth²'s generator) resolves it to a path here and
hands that path to its own job. Its directory is named by a fingerprint of that composed
config, built under a file lock and renamed into place when complete, so concurrent sweep members
wait for one build instead of racing, and a crashed build is never mistaken for a finished one.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, open_dict

from vlmalign.job import TrainingJob
from vlmalign.pipelines.shipped_bases import copy_shipped, shipped_base
from vlmalign.utils.compose import NOT_COMPUTED, compose_train, config_fingerprint
from vlmalign.utils.files import build_once

log = logging.getLogger(__name__)
BASE_VERSION = 1  # bump when training code changes what a base run produces
SEED_VARIABLES = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")  # what pl.seed_everything leaves in the environment


def compose_base_config(base: DictConfig, cache_dir: str) -> DictConfig:
    return compose_train([*base.overrides, f"paths.cache_dir={cache_dir}"])


@contextmanager
def isolated_random_state():
    """Restore every random stream a job seeds (Python, NumPy, torch, Lightning's seed variables) afterwards, so
    that building a base inside a caller's process leaves the caller's stream as if the base had been cached."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    env = {key: os.environ.get(key) for key in SEED_VARIABLES}
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def base_fingerprint(cfg: DictConfig) -> str:
    """What names a base in the cache and in the shipped assets: its composed config and ``BASE_VERSION``."""
    return config_fingerprint(cfg, NOT_COMPUTED, BASE_VERSION)


def ensure_base_model(base: DictConfig, cache_dir: str, use_shipped: bool | None = None) -> Path:
    """Directory of the finished base run (``model/``, ``metrics.json``, ``samples.jsonl``).

    A base shipped with the package under the same fingerprint is copied into the cache instead of trained
    (``base.shipped``, default true; vlmalign/pipelines/shipped_bases.py says why); otherwise it is trained here.
    """
    cfg = compose_base_config(base, cache_dir)
    fingerprint = base_fingerprint(cfg)
    target = Path(cache_dir) / "bases" / f"{base.name}-{fingerprint}"
    use_shipped = base.get("shipped", True) if use_shipped is None else use_shipped
    shipped = shipped_base(base.name, fingerprint) if use_shipped else None
    if shipped is not None:  # its own cache entry: a base trained here under the same fingerprint is another model
        return build_once(target.with_name(target.name + "-shipped"), lambda scratch: copy_shipped(shipped, scratch),
                          what=f"SFT base (shipped {shipped})")

    def build(scratch: Path) -> None:
        with open_dict(cfg):
            cfg.paths.output_dir = str(scratch)
        with isolated_random_state():
            job = TrainingJob(cfg, building_base=True)
            job.run(resolve_base(cfg))  # a base may start from another (the RLAIF-V labeler from the SFT base)
        shutil.rmtree(scratch / "checkpoints", ignore_errors=True)  # the HF export in model/ is what is reused

    return build_once(target, build, what="SFT base")


def resolve_base(cfg: DictConfig) -> dict:
    """The model's keyword arguments that start it from the base (built now if not cached): its whole weights
    (``init_from``), or with ``base.modules`` only those modules' (``modules_from``; the rest stays freshly
    initialised, e.g. Synth²'s pretrained image encoder under a new language model). {} without a base."""
    if not cfg.get("base"):
        return {}
    model_dir = str(ensure_base_model(cfg.base, cfg.paths.cache_dir) / "model")
    modules = cfg.base.get("modules")
    if modules:
        return {"modules_from": {"source": model_dir, "modules": list(modules)}}
    return {"init_from": model_dir}
