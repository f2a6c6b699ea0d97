"""POPE-style yes/no object probes (Li et al. 2023) on shapes scenes, and their metrics.

Positives ask about each (colour, shape) present; as many negatives ask about absent pairs, sampled
at random, from the most frequent pairs of the evaluation set ("popular"), or from pairs sharing the
shape or colour of a present object ("adversarial", the confusable ones).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from vlmalign.data.shapes.world import COLORS, SHAPES, Scene

POPE_SAMPLINGS = ("random", "popular", "adversarial")
ALL_PAIRS = [(c, s) for c in COLORS for s in SHAPES]


@dataclass(frozen=True)
class PopeProbe:
    image_id: str
    question: str
    label: bool
    color: str
    shape: str
    sampling: str


def _question(color: str, shape: str) -> str:
    return f"is there a {color} {shape} in the image ?"


def build_pope_probes(
    scenes: Sequence[Scene], sampling: str, seed: int = 0, negatives_per_image: int | None = None
) -> list[PopeProbe]:
    if sampling not in POPE_SAMPLINGS:
        raise ValueError(f"POPE sampling {sampling!r} is not one of {POPE_SAMPLINGS}")
    frequency = Counter(o.identity for scene in scenes for o in scene.objects)
    popularity = {pair: (-frequency[pair], ALL_PAIRS.index(pair)) for pair in ALL_PAIRS}
    probes = []
    for scene in scenes:
        rng = random.Random(f"pope:{seed}:{sampling}:{scene.image_id}")
        present = sorted({o.identity for o in scene.objects})
        absent = [p for p in ALL_PAIRS if p not in present]
        wanted = len(present) if negatives_per_image is None else negatives_per_image
        if sampling == "random":
            negatives = rng.sample(absent, min(wanted, len(absent)))
        elif sampling == "popular":
            negatives = sorted(absent, key=popularity.__getitem__)[:wanted]
        else:
            confusable = [p for p in absent if any(p[0] == c or p[1] == s for c, s in present)]
            rng.shuffle(confusable)
            rest = [p for p in absent if p not in confusable]
            rng.shuffle(rest)
            negatives = (confusable + rest)[:wanted]
        for (color, shape), label in [(p, True) for p in present] + [(p, False) for p in negatives]:
            probes.append(PopeProbe(scene.image_id, _question(color, shape), label, color, shape, sampling))
    return probes


def pope_metrics(labels: Sequence[bool], answers: Sequence[bool | None]) -> dict[str, float]:
    """Accuracy/precision/recall/F1 with "yes" as positive; unparseable answers count as "no"."""
    if len(labels) != len(answers):
        raise ValueError(f"{len(labels)} labels but {len(answers)} answers")
    said_yes = [a is True for a in answers]
    tp = sum(y and truth for y, truth in zip(said_yes, labels))
    fp = sum(y and not truth for y, truth in zip(said_yes, labels))
    fn = sum(not y and truth for y, truth in zip(said_yes, labels))
    tn = len(labels) - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    n = len(labels) or 1
    return {
        "accuracy": (tp + tn) / n,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "yes_ratio": sum(said_yes) / n,
        "unanswered": sum(a is None for a in answers) / n,
    }
