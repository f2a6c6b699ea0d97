"""The one place a DeepSpeed config is written (conf/strategy/deepspeed_*.yaml call ``deepspeed_config``).

The strategy yamls instantiate Lightning's ``DeepSpeedStrategy`` with ``config=`` this dict, so what DeepSpeed
runs with is visible in ``vlmalign-train --cfg job`` and in the run's saved config, and is tested key by key
(tests/deepspeed/test_config.py). Values that live elsewhere are interpolated, not repeated (docs/design.md, rule 5):
gradient clipping is ``trainer.gradient_clip_val``, the mixed-precision mode is ``trainer.precision``.

Lightning fills in what it owns at ``fit`` time: ``gradient_accumulation_steps`` (from
``trainer.accumulate_grad_batches``; it refuses the key here) and ``train_micro_batch_size_per_gpu`` (from the
train loader's batch size; DeepSpeed uses it only for throughput logging).
"""

from __future__ import annotations

from typing import Any

from vlmalign.errors import ConfigError

# DeepSpeed's own defaults for these buckets are 5e8; Lightning's are 2e8. 2e8 elements (400 MB of bf16) keeps
# the communication buffers of a 7B model well under a GPU's headroom while still saturating NVLink.
DEFAULT_BUCKET = 200_000_000
PRECISIONS = ("bf16-mixed", "bf16-true", "16-mixed", "32-true", "32")


def deepspeed_config(
    stage: int,
    precision: str = "bf16-mixed",
    gradient_clipping: float | None = 1.0,
    offload_optimizer: bool = False,
    offload_params: bool = False,
    allgather_bucket_size: int = DEFAULT_BUCKET,
    reduce_bucket_size: int = DEFAULT_BUCKET,
    overlap_comm: bool = True,
    contiguous_gradients: bool = True,
    pin_memory: bool = True,
    stage3_prefetch_bucket_size: int = 50_000_000,
    stage3_param_persistence_threshold: int = 100_000,
    stage3_max_live_parameters: int = 1_000_000_000,
    stage3_max_reuse_distance: int = 1_000_000_000,
    stage3_gather_16bit_weights_on_model_save: bool = True,
) -> dict[str, Any]:
    """A DeepSpeed config dict for ZeRO ``stage`` (1, 2 or 3) under Lightning's ``trainer.precision``.

    ``offload_optimizer`` keeps the fp32 master weights and Adam moments in CPU memory (ZeRO-Offload, any stage);
    ``offload_params`` also keeps the parameters there between uses (ZeRO-Infinity, stage 3 only).
    Bucket sizes are in elements. ``stage3_*`` keys are written only for stage 3.
    """
    if stage not in (1, 2, 3):
        raise ConfigError(f"DeepSpeed ZeRO stage={stage!r}: choose 1, 2 or 3 (strategy=deepspeed_zero2 / "
                          "deepspeed_zero3 / deepspeed_zero3_offload)")
    if offload_params and stage != 3:
        raise ConfigError(f"DeepSpeed offload_params=true needs ZeRO stage 3 (got stage={stage}); parameters are "
                          "only partitioned, and so only offloadable, at stage 3")
    precision = str(precision)
    if precision not in PRECISIONS:
        raise ConfigError(f"trainer.precision={precision!r} cannot be mapped to a DeepSpeed config; use bf16-mixed")
    zero: dict[str, Any] = {
        "stage": stage,
        "overlap_comm": overlap_comm,
        "contiguous_gradients": contiguous_gradients,
        "reduce_scatter": True,
        "reduce_bucket_size": int(reduce_bucket_size),
    }
    if stage < 3:
        zero.update(allgather_partitions=True, allgather_bucket_size=int(allgather_bucket_size))
    else:
        zero.update(
            stage3_prefetch_bucket_size=int(stage3_prefetch_bucket_size),
            stage3_param_persistence_threshold=int(stage3_param_persistence_threshold),
            stage3_max_live_parameters=int(stage3_max_live_parameters),
            stage3_max_reuse_distance=int(stage3_max_reuse_distance),
            # the engine can then write a consolidated 16-bit state dict (save_16bit_model) next to the shards
            stage3_gather_16bit_weights_on_model_save=stage3_gather_16bit_weights_on_model_save,
        )
    if offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": pin_memory}
    if offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": pin_memory}
    config: dict[str, Any] = {
        "zero_optimization": zero,
        # bf16 keeps fp32 master weights in the ZeRO optimizer; fp16 would add loss scaling (not offered).
        "bf16": {"enabled": precision.startswith("bf16")},
        "fp16": {"enabled": precision == "16-mixed"},
        "gradient_clipping": float(gradient_clipping or 0.0),
        # The optimizer is the run's torch.optim.AdamW (conf/optimizer), not one from this config: ZeRO accepts
        # it only with this flag (Lightning's own default config sets it too).
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 2**31 - 1,  # Lightning logs; DeepSpeed's own periodic prints would only add noise
        "wall_clock_breakdown": False,
    }
    if offload_optimizer:
        # See vlmalign/distributed/workarounds.py (OFFLOAD_CLIENT_OPTIMIZER) for why this is off.
        from vlmalign.distributed.workarounds import OFFLOAD_CLIENT_OPTIMIZER

        config.update(OFFLOAD_CLIENT_OPTIMIZER)
    return config


def zero_stage(config: dict[str, Any] | None) -> int:
    """The ZeRO stage of a DeepSpeed config dict (0 when ZeRO is off)."""
    return int(((config or {}).get("zero_optimization") or {}).get("stage", 0))
