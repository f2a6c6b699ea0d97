"""PEFT LoRA on the language model only.

mDPO and LLaVA-style recipes keep the vision tower and projector frozen out of LoRA: the regex
below matches the projection layers *inside the language model* and nothing else. ``language_model``
names the text decoder's module (``model.language_model`` in LLaVA, Qwen2-VL/2.5-VL and PaliGemma,
``model.text_model`` in Idefics3/SmolVLM). Left unset (``model=hf``), it is found: the module the model's
``get_decoder()`` returns, else the one named ``language_model`` or ``text_model``. Vision towers
reuse names like ``q_proj`` and Qwen2.5-VL's vision MLP has ``gate_proj``/``up_proj``/``down_proj``, so
the module path, not the layer name, is what keeps them out.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

from peft import LoraConfig, get_peft_model
from torch import nn

from vlmalign.errors import ConfigError

LANGUAGE_MODEL_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class LoraSettings:
    enabled: bool = False
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: list(LANGUAGE_MODEL_PROJECTIONS))
    language_model_only: bool = True
    language_model: str | None = None  # module-path component of the text decoder (regex fragment); None: found


def text_decoder_path(model: nn.Module) -> str | None:
    """Dotted path of the text decoder inside ``model`` (``model.text_model`` in Idefics3), or None."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    modules = list(model.named_modules())
    for name, module in modules:
        if decoder is not None and module is decoder and name:
            return name
    for candidate in ("language_model", "text_model"):
        for name, _ in modules:
            if name.split(".")[-1] == candidate:
                return name
    return None


def apply_lora(model: nn.Module, settings: LoraSettings) -> nn.Module:
    names = "|".join(settings.target_modules)
    scope = settings.language_model
    if settings.language_model_only:
        found = text_decoder_path(model)
        if scope is None and found is None:
            raise ConfigError("model.lora.language_model: cannot find this model's text decoder (no get_decoder(), no "
                              "module named language_model or text_model); set it to the decoder's module name")
        scope = re.escape(found) if scope is None else scope
        if not any(re.fullmatch(rf".*{scope}.*", name) for name, _ in model.named_modules()):
            raise ConfigError(f"model.lora.language_model={settings.language_model!r} names no module of this model; "
                              f"its text decoder is {found!r}: drop the key (it is found) or set that name")
    target = rf".*{scope}.*\.({names})" if settings.language_model_only else rf".*\.({names})"
    config = LoraConfig(
        r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout, target_modules=target, bias="none"
    )
    with warnings.catch_warnings():
        # PEFT reads transformers' deprecated ``is_gradient_checkpointing`` (FutureWarning on every LoRA run); not ours
        # to rename, and the value it reads is right.
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        return get_peft_model(model, config)
