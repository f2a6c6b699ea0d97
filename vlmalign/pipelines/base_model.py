"""The SFT base every preference run starts from: trained once, cached, shared.

The base is a whole ``vlmalign-train`` run composed from its own overrides (``conf/base/*.yaml``),
independent of the caller's overrides. Its directory is named by a fingerprint of that composed
config, built under a file lock and renamed into place when complete, so concurrent sweep members
wait for one build instead of racing, and a crashed build is never mistaken for a finished one.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from vlmalign.utils.compose import compose_train
from vlmalign.utils.files import atomic_directory, fingerprint, locked, remove_stale_scratch

log = logging.getLogger(__name__)
BASE_VERSION = 1  # bump when training code changes what a base run produces
NOT_FINGERPRINTED = ("paths", "logger", "callbacks", "task_name", "tags", "hydra")


def compose_base_config(base: DictConfig, cache_dir: str) -> DictConfig:
    return compose_train([*base.overrides, f"paths.cache_dir={cache_dir}"])


def ensure_base_model(base: DictConfig, cache_dir: str) -> Path:
    """Directory of the finished base run (``model/``, ``metrics.json``, ``samples.jsonl``)."""
    from vlmalign.train import train

    cfg = compose_base_config(base, cache_dir)
    identity = {k: v for k, v in OmegaConf.to_container(cfg, resolve=False).items() if k not in NOT_FINGERPRINTED}
    target = Path(cache_dir) / "bases" / f"{base.name}-{fingerprint([identity, BASE_VERSION])}"
    with locked(target):
        if (target / "model" / "config.json").exists():
            log.info("reusing base model %s", target)
            return target
        for stale in remove_stale_scratch(target):
            log.warning("removed %s, an unfinished build left by a killed run", stale)
        log.info("training base model %s (once; later runs reuse it)", target)
        with atomic_directory(target) as scratch:
            with open_dict(cfg):
                cfg.paths.output_dir = str(scratch)
            train(cfg)
            shutil.rmtree(scratch / "checkpoints", ignore_errors=True)  # the HF export in model/ is what is reused
    return target
