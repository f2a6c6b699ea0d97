"""LLM-prompted G for data without ground truth: a prompt, the turns parsed from a completion; the completion
backends and their cache are the project's LLM client (``vlmalign.llm``)."""

from vlmalign.negatives.llm.builder import LLMNegativeBuilder
from vlmalign.negatives.llm.parse import parse_turns
from vlmalign.negatives.llm.prompt import render_prompt

__all__ = ["LLMNegativeBuilder", "parse_turns", "render_prompt"]
