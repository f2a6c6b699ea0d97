"""Counts of a build run: nothing is dropped without being counted and given a reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class BuildStats:
    built: int = 0  # samples written with at least one corrective turn
    empty: int = 0  # samples written with no turn: no error found in the rejected response
    rejected: int = 0  # samples the builder could not build (see ``reasons``)
    cached: int = 0  # LLM completions read from the on-disk cache instead of asking the model
    skipped: int = 0  # samples already in the output file (resumed run)
    turns: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def record_built(self, num_turns: int) -> None:
        if num_turns:
            self.built += 1
        else:
            self.empty += 1
        self.turns += num_turns

    def record_rejected(self, reason: str) -> None:
        self.rejected += 1
        self.reasons[reason] += 1

    def as_dict(self) -> dict[str, int | dict[str, int]]:
        return {"built": self.built, "empty": self.empty, "rejected": self.rejected, "cached": self.cached,
                "skipped": self.skipped, "turns": self.turns, "rejected_reasons": dict(sorted(self.reasons.items()))}
