"""Reference-policy strategies: none, frozen copy, LoRA-disabled, precomputed cache."""

from vlmalign.reference.base import NoReference, ReferencePolicy
from vlmalign.reference.frozen import FrozenCopyReference
from vlmalign.reference.lora_disabled import LoraDisabledReference
from vlmalign.reference.precomputed import PrecomputedReference

__all__ = ["FrozenCopyReference", "LoraDisabledReference", "NoReference", "PrecomputedReference", "ReferencePolicy"]
