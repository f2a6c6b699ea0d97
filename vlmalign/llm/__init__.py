"""The LLM client: completion backends (a local HF causal LM, any OpenAI-compatible endpoint) and an on-disk
completion cache. Used by nSFT's LLM builder, RLAIF-V's claim splitter, Synth²'s caption source and MMHal's judge."""

from vlmalign.llm.backends import BackendError, CompletionBackend
from vlmalign.llm.cache import CompletionCache
from vlmalign.llm.hf_backend import HFCausalLMBackend
from vlmalign.llm.openai_backend import OpenAICompatibleBackend

__all__ = ["BackendError", "CompletionBackend", "CompletionCache", "HFCausalLMBackend", "OpenAICompatibleBackend"]
