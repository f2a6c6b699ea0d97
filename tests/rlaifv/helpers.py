"""Plug-ins for the pipeline tests: a splitter and a labeler that make pairs from any text, deterministically.

An untrained policy samples word salad; these give every distinct response its own score, so each round
has pairs and the train stage runs (``splitter._target_`` / ``labeler._target_`` overrides).
"""

from __future__ import annotations

import zlib

from vlmalign.pipelines.rlaifv.claims import Claim


class WordClaims:
    """One claim per distinct word."""

    def split(self, response: str) -> list[Claim]:
        return [Claim(word, f"is there {word} ?") for word in sorted(set(response.split()))]


class ChecksumLabeler:
    """Accepts a claim iff the CRC of its question is even."""

    def __init__(self, cache_dir: str | None = None) -> None:
        pass

    def probabilities(self, questions) -> list[tuple[float, float]]:
        return [(0.9, 0.1) if zlib.crc32(q.claim.question.encode()) % 2 == 0 else (0.2, 0.7) for q in questions]
