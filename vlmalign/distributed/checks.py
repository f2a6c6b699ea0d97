"""Config checks for DeepSpeed strategies, called by ``vlmalign.validation`` before anything is built."""

from __future__ import annotations

import re
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

DEEPSPEED_FIX = ("use trainer=gpu (or trainer=gpu_multinode), which sets accelerator=gpu and precision=bf16-mixed; "
                 "on CPU choose strategy=auto or ddp")


def _is_deepspeed_target(target: Any) -> bool:
    if not isinstance(target, str) or not target:
        return False
    if target.endswith("DeepSpeedStrategy"):
        return True
    try:
        from pytorch_lightning.strategies import DeepSpeedStrategy

        cls = get_class(target)
        return isinstance(cls, type) and issubclass(cls, DeepSpeedStrategy)
    except Exception:  # noqa: BLE001 - an unimportable target is not ours to report here
        return False


def deepspeed_stage(strategy: Any) -> int | None:
    """The ZeRO stage of a strategy config, None if it is not DeepSpeed.

    Reads a Lightning registry name (``deepspeed_stage_3_offload``) or a ``_target_`` node whose ``config`` is
    either a plain DeepSpeed dict (``zero_optimization.stage``) or a ``vlmalign.distributed.deepspeed_config`` node
    (``stage``); without a config, Lightning's ``stage`` argument (default 2).
    """
    if isinstance(strategy, str):
        if not strategy.startswith("deepspeed"):
            return None
        match = re.search(r"stage_(\d)", strategy)
        return int(match.group(1)) if match else 2  # DeepSpeedStrategy's default stage
    if not (isinstance(strategy, DictConfig) and _is_deepspeed_target(strategy.get("_target_"))):
        return None
    config = strategy.get("config")
    if isinstance(config, DictConfig):
        if OmegaConf.select(config, "zero_optimization.stage") is not None:
            return int(config.zero_optimization.stage)
        if config.get("stage") is not None:
            return int(config.stage)
    return int(strategy.get("stage", 2))


def deepspeed_problems(key: str, strategy: Any, accelerator: Any, precision: Any, frozen_reference: bool,
                       zero3_init: Any) -> list[str]:
    """What cannot run with the DeepSpeed strategy at ``key`` (empty if it is not DeepSpeed, or fine)."""
    stage = deepspeed_stage(strategy)
    if stage is None:
        return []
    problems = []
    if accelerator not in ("gpu", "cuda", "auto"):
        problems.append(f"{key} is DeepSpeed but trainer.accelerator={accelerator}, and Lightning's DeepSpeed strategy "
                        f"runs on CUDA GPUs only; {DEEPSPEED_FIX}")
    elif str(precision) not in ("bf16-mixed", "bf16-true"):
        problems.append(f"{key} is DeepSpeed ZeRO stage {stage}, which this project runs in bf16, but "
                        f"trainer.precision={precision}; use trainer=gpu (precision=bf16-mixed) or set "
                        "trainer.precision=bf16-mixed")
    if zero3_init is True and stage != 3:
        problems.append(f"distributed.zero3_init=true builds the model partitioned, which only ZeRO stage 3 does, but "
                        f"{key} is ZeRO stage {stage}; use strategy=deepspeed_zero3 or distributed.zero3_init=false")
    if zero3_init is True and stage == 3 and frozen_reference:
        problems.append(
            f"{key} is DeepSpeed ZeRO stage 3 with distributed.zero3_init=true, so the policy is built as shards, and "
            "reference=frozen would deep-copy those shards (empty tensors); choose reference=lora_disabled (with "
            "model.lora.enabled=true) or reference=precomputed (log-probs cached before training), or set "
            "distributed.zero3_init=false (the frozen copy is then sharded by its own ZeRO-3 engine)"
        )
    return problems
