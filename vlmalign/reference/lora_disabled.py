"""The policy with its LoRA adapters switched off: the base model *is* the reference, no second copy."""

from __future__ import annotations

from vlmalign.errors import ConfigError
from vlmalign.models.logprobs import ResponseLogProbs
from vlmalign.reference.base import ReferencePolicy
from vlmalign.reference.frozen import reference_view_logps


class LoraDisabledReference(ReferencePolicy):
    name = "lora_disabled"

    def setup(self, module) -> None:
        if not module.backbone.is_lora:
            raise ConfigError("reference=lora_disabled needs a LoRA policy: set model.lora.enabled=true "
                              "(or model=tiny_llava_lora), or choose reference=frozen / precomputed")
        super().setup(module)

    def logps(self, batch: dict, views: tuple[str, ...]) -> dict[str, ResponseLogProbs]:
        backbone = self.module.backbone
        with backbone.model.disable_adapter():
            return reference_view_logps(backbone, batch, views)
