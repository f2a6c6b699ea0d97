"""DeepSpeed ZeRO for vlmalign: the one DeepSpeed config builder, the config checks validation runs, ZeRO-3 helpers
for the reference policy, and the one module of DeepSpeed/ZeRO/PEFT workarounds (``workarounds.py``).
See docs/distributed.md."""

from vlmalign.distributed.config import deepspeed_config, zero_stage

__all__ = ["deepspeed_config", "zero_stage"]
