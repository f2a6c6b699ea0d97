"""LLM-prompted G for data without ground truth: a prompt, a pluggable completion backend, a cache."""

from vlmalign.negatives.llm.backends import BackendError, CompletionBackend
from vlmalign.negatives.llm.builder import LLMNegativeBuilder
from vlmalign.negatives.llm.cache import CompletionCache
from vlmalign.negatives.llm.hf_backend import HFCausalLMBackend
from vlmalign.negatives.llm.openai_backend import OpenAICompatibleBackend
from vlmalign.negatives.llm.parse import parse_turns
from vlmalign.negatives.llm.prompt import render_prompt

__all__ = [
    "BackendError", "CompletionBackend", "CompletionCache", "HFCausalLMBackend", "LLMNegativeBuilder",
    "OpenAICompatibleBackend", "parse_turns", "render_prompt",
]
