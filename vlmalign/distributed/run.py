"""What ``vlmalign/train.py`` asks when the strategy may be DeepSpeed: plugins, model preparation, resume checks,
and the hand-over from the training engine to export and evaluation. Every function is a no-op for other
strategies, so train.py reads the same for all of them."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vlmalign.distributed.checks import deepspeed_stage
from vlmalign.distributed.config import zero_stage
from vlmalign.distributed.workarounds import reentrant_checkpointing_for_zero3, unify_parameter_dtype, unshard_after_fit
from vlmalign.distributed.zero3 import gathered, zero3_init

log = logging.getLogger(__name__)


def strategy_stage(cfg: DictConfig) -> int | None:
    """The ZeRO stage of the run's strategy (``trainer.strategy``), None when it is not DeepSpeed."""
    return deepspeed_stage(OmegaConf.select(cfg, "trainer.strategy"))


def checkpoint_plugins(cfg: DictConfig, plugins: list) -> list:
    """The trainer's plugins without checkpoint-IO plugins under DeepSpeed.

    DeepSpeed saves a checkpoint as a *directory* of per-rank shards through its own engine
    (``DeepSpeedStrategy.save_checkpoint`` never calls a CheckpointIO), so ``AtomicCheckpointIO``'s promise (one
    file, renamed into place, SHA-256 beside it) would silently not hold. Instead DeepSpeed writes the ``latest``
    tag file after the shards, and ``deepspeed_checkpoint_problem`` checks a directory before resuming from it.
    """
    from lightning_fabric.plugins import CheckpointIO

    if strategy_stage(cfg) is None:
        return plugins
    return [plugin for plugin in plugins if not isinstance(plugin, CheckpointIO)]


def deepspeed_checkpoint_problem(path: str | Path) -> str | None:
    """Why a DeepSpeed checkpoint directory cannot be resumed from, or None.

    Lightning saves with ``tag="checkpoint"``: ``<dir>/latest`` names the tag and ``<dir>/checkpoint/`` holds
    ``mp_rank_00_model_states.pt`` (``zero_pp_rank_<r>_mp_rank_00_model_states.pt`` per rank under ZeRO-3: module
    + Lightning's client state) and one optimizer shard per rank (``*optim_states.pt``). A run killed
    mid-save leaves a directory without ``latest`` or without the model states: refused, so ``resume=true`` falls
    back to an earlier checkpoint.
    """
    path = Path(path)
    if not path.is_dir():
        return f"{path} is not a DeepSpeed checkpoint directory"
    latest = path / "latest"
    if not latest.is_file():
        return f"{path} has no 'latest' tag file (a DeepSpeed save that did not finish)"
    tag = latest.read_text().strip()
    if not list((path / tag).glob("*mp_rank_00_model_states.pt")):  # ZeRO-3 prefixes it with zero_pp_rank_<r>_
        return f"{path}: tag {tag!r} has no *mp_rank_00_model_states.pt (a DeepSpeed save that did not finish)"
    if not list((path / tag).glob("*optim_states.pt")):
        return f"{path}: tag {tag!r} has no optimizer shards (*optim_states.pt)"
    return None


def prepare_backbone(cfg: DictConfig, backbone) -> None:
    """ZeRO-3 workarounds applied to the freshly built policy (vlmalign/distributed/workarounds.py 3 and 4)."""
    if strategy_stage(cfg) != 3:
        return
    reentrant_checkpointing_for_zero3(backbone)
    unify_parameter_dtype(backbone)


def building_context(cfg: DictConfig):
    """The context the policy is built in: partitioned at birth with ``distributed.zero3_init=true``."""
    if OmegaConf.select(cfg, "distributed.zero3_init", default=False) is not True:
        return contextlib.nullcontext()
    from hydra.utils import instantiate

    config = instantiate(cfg.trainer.strategy.config)
    config = OmegaConf.to_container(config) if isinstance(config, DictConfig) else dict(config)
    return zero3_init(config)


def before_fit(backbone):
    """The context for work on the policy before ``fit`` (initial evaluation, on-policy data): its parameters whole
    on every rank if it was built partitioned; nothing otherwise."""
    return gathered(backbone)


def after_fit(trainer: Any, backbone) -> None:
    """Make the trained policy an ordinary module again after a ZeRO-3 fit (export, evaluation)."""
    from pytorch_lightning.strategies import DeepSpeedStrategy

    strategy = trainer.strategy
    if isinstance(strategy, DeepSpeedStrategy) and zero_stage(strategy.config) == 3:
        count = unshard_after_fit(strategy.deepspeed_engine, backbone)
        log.info("ZeRO-3: %d parameter shards gathered for export and evaluation", count)
