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

from omegaconf import DictConfig, open_dict

from vlmalign.utils.compose import NOT_COMPUTED, compose_train, config_fingerprint
from vlmalign.utils.files import build_once

log = logging.getLogger(__name__)
BASE_VERSION = 1  # bump when training code changes what a base run produces


def compose_base_config(base: DictConfig, cache_dir: str) -> DictConfig:
    return compose_train([*base.overrides, f"paths.cache_dir={cache_dir}"])


def ensure_base_model(base: DictConfig, cache_dir: str) -> Path:
    """Directory of the finished base run (``model/``, ``metrics.json``, ``samples.jsonl``)."""
    from vlmalign.train import train

    cfg = compose_base_config(base, cache_dir)
    target = Path(cache_dir) / "bases" / f"{base.name}-{config_fingerprint(cfg, NOT_COMPUTED, BASE_VERSION)}"

    def build(scratch: Path) -> None:
        with open_dict(cfg):
            cfg.paths.output_dir = str(scratch)
        train(cfg, building_base=True)
        shutil.rmtree(scratch / "checkpoints", ignore_errors=True)  # the HF export in model/ is what is reused

    return build_once(target, build, what="SFT base")


def base_init(cfg: DictConfig) -> dict:
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
