"""What the LLM builder needs from a model: a prompt in, a completion out, and a stable identity."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from vlmalign.errors import VlmalignError


class BackendError(VlmalignError):
    """The model could not be reached or loaded. Not a per-sample rejection: the run stops (and can
    be resumed), so an outage never marks the remaining samples as rejected."""


@runtime_checkable
class CompletionBackend(Protocol):
    @property
    def identity(self) -> dict[str, Any]:
        """JSON-serialisable: which model, where, with which decoding settings (the cache key)."""
        ...

    def complete(self, prompt: str) -> str:
        """The model's reply to one user message; raises BackendError when no reply can be had."""
        ...
