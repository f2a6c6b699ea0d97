"""Reference-policy strategies. ``NoReference`` serves reference-free objectives (SFT, nSFT)."""

from __future__ import annotations

from vlmalign.objectives.base import LogProbs


class ReferencePolicy:
    """Supplies s_ref for the views an objective asks for; set up once the policy module exists."""

    name = "base"

    def setup(self, module) -> None:
        self.module = module

    def logps(self, batch: dict, views: tuple[str, ...]) -> LogProbs | None:  # pragma: no cover
        raise NotImplementedError


class NoReference(ReferencePolicy):
    name = "none"

    def logps(self, batch: dict, views: tuple[str, ...]) -> None:
        return None
