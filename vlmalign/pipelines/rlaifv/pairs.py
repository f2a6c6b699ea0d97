"""Pair: scored responses → preference pairs (RLAIF-V, arXiv 2405.17220, §2.2 and its data scripts).

- score(response) = −(number of rejected claims);
- a pair (chosen, rejected) of one instruction needs score(chosen) − score(rejected) ≥ ``min_gap`` (1);
- at most ``max_pairs`` (2) pairs per instruction, drawn at random (seeded) among the eligible ones;
- responses with no claim at all are left out (−0 rejected claims would otherwise make an empty or
  unparseable response the best one);
- length balance: the score rewards saying less (fewer claims, fewer chances to be wrong), so chosen
  responses tend to be shorter and DPO would learn brevity. Pairs are dropped, longest-chosen-vs-rejected
  difference first on the side that dominates, until the mean word-length difference between chosen
  and rejected is within ``length_tolerance`` words.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ScoredResponse:
    text: str
    score: float
    num_claims: int


def response_score(verdicts: Sequence[bool]) -> float:
    """−(rejected claims)."""
    return float(-sum(not v for v in verdicts))


def instruction_pairs(responses: Sequence[ScoredResponse], rng: random.Random, min_gap: float = 1.0,
                      max_pairs: int = 2) -> list[tuple[int, int]]:
    """(chosen index, rejected index) pairs of one instruction's responses."""
    usable = [i for i, r in enumerate(responses) if r.num_claims > 0]
    eligible = [(i, j) for i in usable for j in usable
                if responses[i].score - responses[j].score >= min_gap and responses[i].text != responses[j].text]
    rng.shuffle(eligible)
    return sorted(eligible[:max_pairs])


def word_length(text: str) -> int:
    return len(text.split())


def length_balance(pairs: list[dict], tolerance: float = 1.0) -> list[dict]:
    """Drop pairs, the most length-biased first, until |mean(len(chosen) − len(rejected))| ≤ ``tolerance``
    words; order otherwise kept. Each pair is a dict with "chosen" and "rejected" texts."""
    diffs = [word_length(p["chosen"]) - word_length(p["rejected"]) for p in pairs]
    kept = set(range(len(pairs)))
    total = sum(diffs)
    # Candidates on each side, most biased last (popped first); ties broken by index for determinism.
    longer = sorted((i for i in kept if diffs[i] > 0), key=lambda i: (diffs[i], -i))
    shorter = sorted((i for i in kept if diffs[i] < 0), key=lambda i: (-diffs[i], -i))
    while kept and abs(total / len(kept)) > tolerance:
        side = longer if total > 0 else shorter
        if not side:
            break
        drop = side.pop()
        kept.discard(drop)
        total -= diffs[drop]
    return [p for i, p in enumerate(pairs) if i in kept]
