"""POPE-style yes/no object probes (Li et al. 2023) on shapes scenes, and their metrics.

Positives ask "is there a {color} {shape} in the image ?" once per (colour, shape) present; by default
as many negatives ask about absent pairs, sampled

- ``random``: uniformly among absent pairs;
- ``popular``: the absent pairs most frequent in the statistics (one global ranking, ties
  broken by a seeded shuffle), which probes a prior for common objects;
- ``adversarial``: the absent pairs co-occurring most often with the scene's pairs in the statistics (POPE's
  rule); among equally co-occurring ones, those sharing the shape or the colour of a present object first (the
  confusable ones: a model that confuses shapes says "yes" to them), then a seeded shuffle.

The statistics are object frequencies and pair co-occurrences counted over a set of scenes: by default the
probed scenes themselves, or (``PopeStatistics.of_world``) the training distribution of a world, as POPE counts
them over COCO's annotations. On world v3 the latter are the language priors (usual colours, companion
shapes), so popular and adversarial negatives are exactly the objects a prior-led model names when absent.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from vlmalign.data.shapes.text import existence_question as pope_question  # the SFT data's words, so probes match
from vlmalign.data.shapes.world import COLORS, SHAPES, Scene

POPE_SAMPLINGS = ("random", "popular", "adversarial")
ALL_PAIRS = [(c, s) for c in COLORS for s in SHAPES]


@dataclass(frozen=True)
class PopeStatistics:
    frequency: Counter  # (colour, shape) -> objects
    cooccurrence: Counter  # frozenset of two (colour, shape) pairs -> scenes holding both

    @classmethod
    def of_scenes(cls, scenes: Sequence[Scene]) -> PopeStatistics:
        identities = [sorted({o.identity for o in scene.objects}) for scene in scenes]
        return cls(Counter(o.identity for scene in scenes for o in scene.objects),
                   Counter(frozenset((p, q)) for present in identities for p in present for q in present if p != q))

    @classmethod
    def of_world(cls, world, num_scenes: int = 4000) -> PopeStatistics:
        """Counted over ``num_scenes`` training scenes of ``world`` (a WorldSpec): its priors, estimated."""
        return cls.of_scenes(world.scenes("train", num_scenes))


@dataclass(frozen=True)
class PopeProbe:
    image_id: str
    question: str
    label: bool
    color: str
    shape: str
    sampling: str


def _negatives(present: list[tuple[str, str]], wanted: int, sampling: str, rng: random.Random,
               popularity: dict, cooccurrence: Counter) -> list[tuple[str, str]]:
    absent = [p for p in ALL_PAIRS if p not in present]
    if sampling == "random":
        return rng.sample(absent, min(wanted, len(absent)))
    if sampling == "popular":
        return sorted(absent, key=popularity.__getitem__)[:wanted]
    tiebreak = {p: rng.random() for p in absent}

    def rank(p: tuple[str, str]) -> tuple:
        confusable = any(p[0] == c or p[1] == s for c, s in present)
        return -sum(cooccurrence[frozenset((p, q))] for q in present), not confusable, tiebreak[p]

    return sorted(absent, key=rank)[:wanted]


def build_pope_probes(
    scenes: Sequence[Scene], sampling: str, seed: int = 0, negatives_per_image: int | None = None,
    statistics: PopeStatistics | None = None,
) -> list[PopeProbe]:
    """Per scene: its positives, then its negatives. Deterministic in (scenes, sampling, seed, statistics);
    ``statistics`` default to those of ``scenes``."""
    if sampling not in POPE_SAMPLINGS:
        raise ValueError(f"POPE sampling {sampling!r} is not one of {POPE_SAMPLINGS}")
    if negatives_per_image is not None and negatives_per_image < 0:
        raise ValueError(f"negatives_per_image={negatives_per_image} must be >= 0 (or None: as many as positives)")
    identities = [sorted({o.identity for o in scene.objects}) for scene in scenes]
    statistics = statistics or PopeStatistics.of_scenes(scenes)
    ranking = list(ALL_PAIRS)
    random.Random(f"pope:{seed}:popular").shuffle(ranking)
    popularity = {pair: (-statistics.frequency[pair], ranking.index(pair)) for pair in ALL_PAIRS}
    cooccurrence = statistics.cooccurrence
    probes = []
    for scene, present in zip(scenes, identities):
        rng = random.Random(f"pope:{seed}:{sampling}:{scene.image_id}")
        wanted = len(present) if negatives_per_image is None else negatives_per_image
        negatives = _negatives(present, wanted, sampling, rng, popularity, cooccurrence)
        for (color, shape), label in [(p, True) for p in present] + [(p, False) for p in negatives]:
            probes.append(PopeProbe(scene.image_id, pope_question(color, shape), label, color, shape, sampling))
    return probes


def pope_metrics(labels: Sequence[bool], answers: Sequence[bool | None]) -> dict[str, float]:
    """Accuracy/precision/recall/F1 with "yes" as positive; an unparseable answer (None) counts as "no"."""
    if len(labels) != len(answers):
        raise ValueError(f"{len(labels)} labels but {len(answers)} answers")
    said_yes = [a is True for a in answers]
    tp = sum(y and truth for y, truth in zip(said_yes, labels))
    fp = sum(y and not truth for y, truth in zip(said_yes, labels))
    fn = sum(not y and truth for y, truth in zip(said_yes, labels))
    tn = len(labels) - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    n = len(labels)
    return {
        "accuracy": (tp + tn) / n if n else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "yes_ratio": sum(said_yes) / n if n else 0.0,
        "unanswered": sum(a is None for a in answers) / n if n else 0.0,
    }
