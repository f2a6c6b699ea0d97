"""LLM-prompted G(y_l; y_w, Q) for real data, where no ground truth exists (nSFT, arXiv 2411.14797).

One prompt per sample (chosen, rejected, codebook) goes to a pluggable completion backend; the reply
is validated into turns or the sample is rejected with a counted reason (``parse.parse_turns``).
Completions are cached on disk, so rebuilding the dataset costs no model calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vlmalign.llm.backends import CompletionBackend
from vlmalign.llm.cache import CompletionCache
from vlmalign.negatives.codebook import Codebook, load_codebook
from vlmalign.negatives.interface import NegativeBuilder, PreferenceSample, Turn
from vlmalign.negatives.llm.parse import parse_turns
from vlmalign.negatives.llm.prompt import render_prompt


class LLMNegativeBuilder(NegativeBuilder):
    def __init__(self, backend: CompletionBackend, cache_dir: str | Path | None = None,
                 codebook: Codebook | None = None) -> None:
        super().__init__()
        self.backend = backend
        self.codebook = codebook or load_codebook()
        self.cache = CompletionCache(cache_dir) if cache_dir is not None else None

    @property
    def identity(self) -> dict[str, Any]:
        return {"builder": "llm", "backend": self.backend.identity, "codebook": self.codebook.fingerprint()}

    def completion(self, prompt: str) -> str:
        """The backend's reply, from the cache when this backend has answered this prompt before."""
        if self.cache is None:
            return self.backend.complete(prompt)
        completion, cached = self.cache.complete(self.backend, prompt)
        self.stats.cached += cached
        return completion

    def build(self, sample: PreferenceSample) -> list[Turn]:
        return parse_turns(self.completion(render_prompt(sample, self.codebook)), self.codebook)
