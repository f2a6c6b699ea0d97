"""ZeRO-3 helpers for the reference policy and for code that reads weights outside the training engine.

Under ZeRO-3 a parameter is a shard: ``param.data`` is empty on every rank and DeepSpeed's hooks gather it
around each submodule's forward. Three things in this project touch weights outside those hooks, and each is
handled here:

- the ``frozen`` reference, a deep copy of the initial policy made before the engine exists: ``shard_reference``
  wraps it in its own ZeRO-3 inference engine on first use (as TRL does for its reference model), so it is
  sharded across ranks like the policy instead of held whole on every GPU;
- the ``precomputed`` reference and the initial evaluation, which run before training: with ``zero3_init`` the
  model was built already partitioned, so they run inside ``gathered`` (every parameter gathered on every rank for
  the duration; a no-op for an ordinary model);
- export and evaluation after training: ``vlmalign.distributed.workarounds.unshard_after_fit``.

``lora_disabled`` needs nothing: the reference *is* the policy with its adapters off, inside the same engine.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from torch import nn

from vlmalign.distributed.config import zero_stage
from vlmalign.errors import ConfigError

log = logging.getLogger(__name__)
_HF_CONFIG = []  # transformers reads ZeRO-3 from a weak reference: the object must stay alive while models load


def is_partitioned(module: nn.Module) -> bool:
    """Whether any parameter of ``module`` is a live ZeRO-3 shard."""
    return any(hasattr(p, "ds_id") for p in module.parameters())


@contextlib.contextmanager
def gathered(module: nn.Module) -> Iterator[None]:
    """Every ZeRO-3-partitioned parameter of ``module`` whole on every rank inside the block (read-only: changes
    are not written back). A no-op when nothing is partitioned. All ranks must enter it together."""
    params = [p for p in module.parameters() if hasattr(p, "ds_id")]
    if not params:
        yield
        return
    import deepspeed

    with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
        yield


def deepspeed_strategy_of(module) -> object | None:
    """The DeepSpeed strategy ``module`` (a LightningModule) is being trained with, or None."""
    from pytorch_lightning.strategies import DeepSpeedStrategy

    trainer = getattr(module, "_trainer", None)
    strategy = getattr(trainer, "strategy", None)
    return strategy if isinstance(strategy, DeepSpeedStrategy) else None


def shard_reference(reference: nn.Module, module) -> nn.Module:
    """``reference`` sharded like the policy when ``module`` trains under ZeRO-3 (its own inference engine, no
    optimizer); returned unchanged otherwise. Idempotent; every rank must call it at the same point (the first
    training step does)."""
    strategy = deepspeed_strategy_of(module)
    if strategy is None or zero_stage(strategy.config) != 3 or getattr(reference, "_vlmalign_sharded", False):
        return reference
    if is_partitioned(reference):
        raise ConfigError("reference=frozen: the copy of the policy holds ZeRO-3 shards (the model was built "
                          "partitioned, distributed.zero3_init=true); use reference=lora_disabled or precomputed")
    import deepspeed

    policy_config = strategy.config
    config = {
        "zero_optimization": {key: value for key, value in policy_config["zero_optimization"].items()
                              if key.startswith("stage") or key in ("offload_param",)},
        "bf16": policy_config.get("bf16", {"enabled": False}),
        "fp16": policy_config.get("fp16", {"enabled": False}),
        "train_micro_batch_size_per_gpu": policy_config.get("train_micro_batch_size_per_gpu", 1),
        "steps_per_print": policy_config.get("steps_per_print", 2**31 - 1),
    }
    engine, *_ = deepspeed.initialize(model=reference, config=config, dist_init_required=False)
    engine.eval()
    reference = engine.module
    reference._vlmalign_sharded = True
    reference._vlmalign_engine = engine  # keep the engine (and its hooks) alive as long as the copy
    log.info("reference=frozen: the copy of the policy is sharded with ZeRO-3 (its own inference engine)")
    return reference


@contextlib.contextmanager
def zero3_init(config: dict, enabled: bool = True) -> Iterator[None]:
    """Build models *partitioned* (``deepspeed.zero.Init`` through transformers' ``HfDeepSpeedConfig``): no rank ever
    holds the whole model in memory, for models that do not fit one GPU (or CPU RAM times GPUs per node).

    The ranks must be known before the model is built, i.e. before Lightning starts its processes: launch with
    ``torchrun`` or ``srun`` (SLURM), which set them; this exports them for DeepSpeed and initialises its process
    group (Lightning later finds it initialised and uses it).
    """
    if not enabled:
        yield
        return
    import deepspeed
    from transformers.integrations import HfDeepSpeedConfig

    if zero_stage(config) != 3:
        raise ConfigError("distributed.zero3_init=true needs ZeRO stage 3 (strategy=deepspeed_zero3 or "
                          "deepspeed_zero3_offload)")
    _export_rank_environment()
    deepspeed.init_distributed(dist_backend=deepspeed.get_accelerator().communication_backend_name())
    config = {**config, "train_micro_batch_size_per_gpu": config.get("train_micro_batch_size_per_gpu", 1)}
    _HF_CONFIG[:] = [HfDeepSpeedConfig(config)]
    try:
        yield
    finally:
        _HF_CONFIG.clear()  # later from_pretrained calls (evaluation, export checks) load ordinary models


def _export_rank_environment() -> None:
    """RANK / WORLD_SIZE / LOCAL_RANK / MASTER_* from the cluster, the way Lightning's environments read them."""
    if all(key in os.environ for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")):
        return  # torchrun (TorchElasticEnvironment), or set by hand
    from lightning_fabric.plugins.environments import SLURMEnvironment

    if not SLURMEnvironment.detect():
        raise ConfigError("distributed.zero3_init=true builds the model partitioned across ranks, so the ranks must be "
                          "known before Lightning starts: launch with torchrun or srun (hydra/launcher=slurm), or set "
                          "distributed.zero3_init=false")
    env = SLURMEnvironment()
    os.environ.update(RANK=str(env.global_rank()), WORLD_SIZE=str(env.world_size()), LOCAL_RANK=str(env.local_rank()),
                      MASTER_ADDR=env.main_address, MASTER_PORT=str(env.main_port))
