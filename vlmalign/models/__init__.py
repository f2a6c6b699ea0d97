"""Backbones: loading, LoRA and log-prob extraction."""

from vlmalign.logps import ResponseLogProbs
from vlmalign.models.backbone import VisionLanguageBackbone
from vlmalign.models.loader import load_backbone, tiny_llava_backbone
from vlmalign.models.logprobs import (
    IGNORE_INDEX,
    ResponseStates,
    response_logps,
    response_states,
    response_token_kl,
)

__all__ = [
    "IGNORE_INDEX",
    "ResponseLogProbs",
    "ResponseStates",
    "VisionLanguageBackbone",
    "load_backbone",
    "response_logps",
    "response_states",
    "response_token_kl",
    "tiny_llava_backbone",
]
