"""Backbones: loading, LoRA and log-prob extraction."""

from vlmalign.models.backbone import VisionLanguageBackbone
from vlmalign.models.loader import load_backbone, tiny_llava_backbone
from vlmalign.models.logprobs import IGNORE_INDEX, ResponseLogProbs, response_logps

__all__ = [
    "IGNORE_INDEX",
    "ResponseLogProbs",
    "VisionLanguageBackbone",
    "load_backbone",
    "response_logps",
    "tiny_llava_backbone",
]
