"""Every DeepSpeed / ZeRO / PEFT / Lightning quirk this project works around, in one module (docs/design.md, rule 8).

Each entry says what goes wrong without it, where that was reported, and when it can go. Nothing outside
``vlmalign/distributed/`` patches DeepSpeed or Lightning behaviour; callers use the functions below.
"""

from __future__ import annotations

import logging

import torch
from pytorch_lightning.accelerators import CPUAccelerator
from pytorch_lightning.strategies import DDPStrategy, DeepSpeedStrategy
from torch import nn

log = logging.getLogger(__name__)

# 1. ZeRO-Offload with the run's own optimizer.
# DeepSpeed refuses a client optimizer (our torch.optim.AdamW from conf/optimizer) together with
# ``offload_optimizer`` unless this flag is off ("You are using ZeRO-Offload with a client provided optimizer ...
# which in most cases will yield poor performance"). Turning it off keeps conf/optimizer the one home of the
# optimizer; torch's AdamW then steps the fp32 master weights on the CPU. For speed set
# ``optimizer._target_=deepspeed.ops.adam.DeepSpeedCPUAdam`` (same lr/betas/weight_decay arguments; compiles a
# C++ op on first use).
OFFLOAD_CLIENT_OPTIMIZER = {"zero_force_ds_cpu_optimizer": False}


# 2. DeepSpeed on a CPU accelerator under Lightning (tests and laptops only).
# Lightning's DeepSpeedStrategy refuses anything but CUDA in ``setup_environment`` and then checks that every
# device index equals its process's local rank (``_validate_device_index_selection``); CPU devices have index
# None, and DeepSpeed's engine compares ``device_rank >= 0`` (a TypeError on None). DeepSpeed itself runs on its
# CPU accelerator (``DS_ACCELERATOR=cpu``, gloo collectives when oneCCL is not installed). Numbering the CPU
# devices 0..n-1 satisfies both checks; nothing else changes. Used by tests/deepspeed to run ZeRO-2/3 for real
# on CPU. Never used by the shipped strategy yamls (which require trainer=gpu).
class CPUDeepSpeedStrategy(DeepSpeedStrategy):
    """Lightning's DeepSpeedStrategy on DeepSpeed's CPU accelerator (set ``DS_ACCELERATOR=cpu`` before import)."""

    strategy_name = "deepspeed_cpu"

    def setup_environment(self) -> None:
        if not isinstance(self.accelerator, CPUAccelerator):
            return super().setup_environment()
        import deepspeed

        name = deepspeed.get_accelerator().device_name()
        if name != "cpu":
            raise RuntimeError(f"CPUDeepSpeedStrategy needs DeepSpeed's CPU accelerator, but DeepSpeed chose {name!r}; "
                               "set DS_ACCELERATOR=cpu before deepspeed is imported")
        self.parallel_devices = [torch.device("cpu", index) for index in range(len(self.parallel_devices))]
        DDPStrategy.setup_environment(self)  # skips only DeepSpeedStrategy's CUDA check
        return None


# 3. ZeRO-3 + gradient checkpointing: reentrant only.
# Non-reentrant checkpointing (what conf/model/hf.yaml's loader asks for) re-runs the forward during backward;
# ZeRO-3's forward hooks re-partition frozen parameters (a LoRA base) in place, so torch's metadata check sees
# shape [0] instead of the saved shape: "CheckpointError: Recomputed values ... have different metadata"
# (deepspeedai/DeepSpeed#4332, huggingface/transformers#47254; TRL forces reentrant for PEFT + ZeRO-3 in
# huggingface/trl#6356). ZeRO-2 does not partition parameters and is unaffected. Reentrant checkpointing needs an
# input that requires grad when the embeddings are frozen (LoRA), hence ``enable_input_require_grads``.
# Can go when DeepSpeed skips re-partitioning frozen params inside a recompute (deepspeedai/DeepSpeed#8130).
def reentrant_checkpointing_for_zero3(backbone) -> bool:
    """Switch an HF backbone's gradient checkpointing to reentrant; True if it was on (and so changed)."""
    core = backbone.core
    # transformers 5 renamed the property (the old name warns, FutureWarning); older versions have only the old one.
    name = "is_activation_checkpointing" if hasattr(type(core), "is_activation_checkpointing") else \
        "is_gradient_checkpointing"
    if not getattr(core, name, False):
        return False
    core.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    if backbone.is_lora:
        core.enable_input_require_grads()
    log.info("ZeRO-3: gradient checkpointing switched to use_reentrant=True (see vlmalign/distributed/workarounds.py)")
    return True


# 4. ZeRO-3 + PEFT: one dtype for all parameters.
# PEFT upcasts LoRA adapters to fp32 (``autocast_adapter_dtype=True``) on a bf16 base. Since DeepSpeed 0.19.2 the
# engine no longer casts a ZeRO-Init model to bf16 wholesale, and ZeRO-3's coalesced all-gather allocates its
# buffer in the first parameter's dtype: the first optimizer step fails with "TypeError: output tensor must have
# the same type as input tensor" (deepspeedai/DeepSpeed#8072, huggingface/trl#6091, which passes
# ``autocast_adapter_dtype=False``). Casting the adapters to the base dtype before the engine wraps the model is
# the same fix without touching model loading; ZeRO keeps fp32 master copies of the trainable weights anyway, so
# the optimizer still updates in fp32.
def unify_parameter_dtype(module: nn.Module) -> torch.dtype | None:
    """Cast floating parameters to the module's most common floating dtype; returns it (None if already one)."""
    counts: dict[torch.dtype, int] = {}
    for parameter in module.parameters():
        if parameter.is_floating_point():
            counts[parameter.dtype] = counts.get(parameter.dtype, 0) + parameter.numel()
    if len(counts) < 2:
        return None
    dtype = max(counts, key=counts.get)
    for parameter in module.parameters():
        if parameter.is_floating_point() and parameter.dtype != dtype:
            parameter.data = parameter.data.to(dtype)
    log.info("ZeRO-3: parameters cast to one dtype %s (see vlmalign/distributed/workarounds.py)", dtype)
    return dtype


# 5. After a ZeRO-3 fit the policy's parameters are shards (``param.data`` is empty on every rank) and the engine's
# hooks gather them around each submodule's forward. Evaluation (``generate`` loops over tokens, ranks would
# need ``synced_gpus``) and ``save_pretrained`` (it would save empty tensors) want an ordinary module. This gathers
# every parameter once, removes the engine's hooks, and leaves the full tensors in place on every rank (the
# model once per GPU: 14 GB for a 7B in bf16). Training is over by then; nothing uses the engine again.
def unshard_after_fit(engine, module: nn.Module) -> int:
    """Materialise ZeRO-3-partitioned parameters of ``module`` in place; returns how many were gathered."""
    import deepspeed

    partitioned = [p for p in module.parameters() if hasattr(p, "ds_id")]
    if not partitioned:
        return 0
    full = []
    for parameter in partitioned:  # one at a time: peak memory is the model plus one gathered tensor
        with deepspeed.zero.GatheredParameters([parameter], modifier_rank=None):
            full.append(parameter.data.detach().clone())
    engine.destroy()  # removes ZeRO-3's module hooks, which would re-partition on the next forward
    for parameter, tensor in zip(partitioned, full):
        parameter.data = tensor
        del parameter.ds_id  # DeepSpeed's own test for a ZeRO-3 parameter (is_zero_param) is hasattr(p, "ds_id")
    return len(partitioned)


# 6. Frozen dataclasses in a batch under DeepSpeed (and any "*-true" precision).
# Before any module hook, Lightning's DeepSpeedPrecision.convert_input (HalfPrecision's too) walks every batch
# with lightning_utilities' ``apply_to_collection`` to cast floating tensors; it deep-copies each dataclass it meets
# and refuses a frozen one: "ValueError: A frozen dataclass was passed to `apply_to_collection` but this is not
# allowed". The online trainer's batches hold PromptRecords (frozen: a prompt is a value), so objective=grpo
# failed at its first step under strategy=deepspeed_zero2/3 (found by benchmarks/zero_objectives.py --objective
# grpo). A holder that is no Sequence, Mapping or dataclass is passed through untouched, which also spares a deep
# copy of every prompt's image per step. Can go when the precision plugins pass ``allow_frozen=True``.
class OpaqueToLightning:
    """Carries ``items`` through Lightning's batch walkers unopened; the consumer reads ``.items``."""

    __slots__ = ("items",)

    def __init__(self, items) -> None:
        self.items = items
