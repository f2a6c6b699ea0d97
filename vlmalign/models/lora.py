"""PEFT LoRA on the language model only.

mDPO and LLaVA-style recipes keep the vision tower and projector frozen out of LoRA: the regex
below matches the projection layers *inside the language model* and nothing else. ``language_model``
names the text decoder's module (``model.language_model`` in LLaVA, Qwen2-VL/2.5-VL and PaliGemma,
``model.text_model`` in Idefics3/SmolVLM); the presets in ``conf/model/`` set it per family. Vision towers
reuse names like ``q_proj`` and Qwen2.5-VL's vision MLP has ``gate_proj``/``up_proj``/``down_proj``, so
the module path, not the layer name, is what keeps them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from peft import LoraConfig, get_peft_model
from torch import nn

LANGUAGE_MODEL_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class LoraSettings:
    enabled: bool = False
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: list(LANGUAGE_MODEL_PROJECTIONS))
    language_model_only: bool = True
    language_model: str = "language_model"  # module-path component of the text decoder (regex fragment)


def apply_lora(model: nn.Module, settings: LoraSettings) -> nn.Module:
    names = "|".join(settings.target_modules)
    scope = settings.language_model
    target = rf".*{scope}.*\.({names})" if settings.language_model_only else rf".*\.({names})"
    config = LoraConfig(
        r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout, target_modules=target, bias="none"
    )
    return get_peft_model(model, config)
