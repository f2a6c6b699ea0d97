"""Compose the real `conf/` tree in tests, with Hydra's runtime values set as in a real run."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import vlmalign.utils.resolvers  # noqa: F401 - registers ${pid:} and ${run_overrides:} as every entry point does

CONF = Path(__file__).resolve().parent.parent / "conf"


def compose_app(config_name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """``conf/<config_name>.yaml`` (train, evaluate, rlaifv) with ``overrides``, Hydra's runtime values set as in a
    real run writing to ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def compose_train(overrides: list[str], output_dir: Path, cache_dir: Path | None = None) -> DictConfig:
    cfg = compose_app("train", overrides, output_dir)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        if cache_dir is not None:
            cfg.paths.cache_dir = str(cache_dir)
    return cfg


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def require_sweep_plugin(module: str) -> None:
    """Skip without the ``sweep`` extra, except in CI, which installs it (Makefile): there a missing plugin fails."""
    import importlib
    import os

    import pytest

    if os.environ.get("CI"):
        importlib.import_module(module)
    else:
        pytest.importorskip(module, reason="the sweep extra is not installed: pip install -e '.[sweep]'")
