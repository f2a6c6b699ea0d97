"""Reference-policy strategies. ``NoReference`` serves reference-free objectives (SFT, nSFT)."""

from __future__ import annotations

from vlmalign.objectives.base import LogProbs


class ReferencePolicy:
    """Supplies s_ref for the views an objective asks for.

    ``setup`` runs when the AlignmentModule is built (its backbone still holds the initial weights);
    ``prepare`` runs once before training with the data (the precomputed cache uses it).
    """

    name = "base"

    def setup(self, module) -> None:
        self.module = module

    def prepare(self, datamodule, views: tuple[str, ...], device=None) -> None:
        """Nothing to prepare by default."""

    def logps(self, batch: dict, views: tuple[str, ...]) -> LogProbs | None:  # pragma: no cover
        raise NotImplementedError


class NoReference(ReferencePolicy):
    name = "none"

    def logps(self, batch: dict, views: tuple[str, ...]) -> None:
        return None
