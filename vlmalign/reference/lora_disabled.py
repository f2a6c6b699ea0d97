"""The policy with its LoRA adapters switched off: the base model *is* the reference, no second copy."""

from __future__ import annotations

import dataclasses

from torch import Tensor

from vlmalign.errors import ConfigError
from vlmalign.logps import ResponseLogProbs
from vlmalign.models.logprobs import ResponseStates
from vlmalign.reference.base import ReferencePolicy
from vlmalign.reference.frozen import reference_view_logps, reference_view_states

# Also raised by config validation (vlmalign/validation.py) from model.lora.enabled, before the model is built.
NEEDS_LORA = ("reference=lora_disabled needs a LoRA policy: set model.lora.enabled=true (or model=tiny_llava_lora), "
              "or choose reference=frozen / precomputed")


class _AdapterDisabledHead:
    """The policy's output head, applied with the adapters off (it may carry LoRA weights itself)."""

    def __init__(self, peft_model, head) -> None:
        self.peft_model, self.head = peft_model, head

    def __call__(self, rows: Tensor) -> Tensor:
        with self.peft_model.disable_adapter():
            return self.head(rows)


class LoraDisabledReference(ReferencePolicy):
    name = "lora_disabled"
    provides_states = True

    def setup(self, module) -> None:
        if not module.backbone.is_lora:
            raise ConfigError(NEEDS_LORA)
        super().setup(module)

    def logps(self, batch: dict, views: tuple[str, ...]) -> dict[str, ResponseLogProbs]:
        backbone = self.module.backbone
        with backbone.model.disable_adapter():
            return reference_view_logps(backbone, batch, views, self.module.share_prefix)

    def states(self, batch: dict, views: tuple[str, ...]) -> dict[str, ResponseStates]:
        backbone = self.module.backbone
        with backbone.model.disable_adapter():
            states = reference_view_states(backbone, batch, views, self.module.share_prefix)
        # The KL projects these rows after this context has closed: the head must switch the adapters off itself.
        return {view: dataclasses.replace(s, head=_AdapterDisabledHead(backbone.model, s.head))
                for view, s in states.items()}
