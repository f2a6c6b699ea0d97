"""Exact caption hallucination metrics on shapes scenes: CHAIR_i, CHAIR_s, Cover and error rates.

CHAIR (Rohrbach et al. 2018) with object category = (colour, shape): CHAIR_i = hallucinated mentions /
all mentions; CHAIR_s = captions with >= 1 hallucinated mention / captions; Cover = scene objects
mentioned / scene objects (AMBER's coverage). A mention without a colour matches any object of its
shape. Matched mentions are also checked for size and position.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from vlmalign.data.shapes.parse import Mention, parse_count, parse_mentions
from vlmalign.data.shapes.world import Scene, ShapeObject


@dataclass
class CaptionScore:
    mentions: list[Mention]
    hallucinated: list[Mention] = field(default_factory=list)
    covered: set[int] = field(default_factory=set)
    attribute_errors: int = 0
    spatial_errors: int = 0
    matched: int = 0
    count_stated: int | None = None
    count_correct: bool | None = None


def _compatible(mention: Mention, obj: ShapeObject) -> bool:
    return mention.shape == obj.shape and (mention.color is None or mention.color == obj.color)


def _agreement(mention: Mention, obj: ShapeObject) -> int:
    return (mention.position == obj.position) * 2 + (mention.size == obj.size)


def score_caption(scene: Scene, text: str) -> CaptionScore:
    score = CaptionScore(parse_mentions(text))
    free = set(range(len(scene.objects)))
    for mention in score.mentions:
        candidates = [i for i in range(len(scene.objects)) if _compatible(mention, scene.objects[i])]
        if not candidates:
            score.hallucinated.append(mention)
            continue
        # Prefer an unmatched object, then the best position/size agreement, then scene order (determinism).
        best = max(candidates, key=lambda i: (i in free, _agreement(mention, scene.objects[i]), -i))
        obj = scene.objects[best]
        free.discard(best)
        score.covered.add(best)
        score.matched += 1
        score.attribute_errors += mention.size is not None and mention.size != obj.size
        score.spatial_errors += mention.position is not None and mention.position != obj.position
    score.count_stated = parse_count(text)
    if score.count_stated is not None:
        score.count_correct = score.count_stated == len(scene.objects)
    return score


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def caption_metrics(pairs: Iterable[tuple[Scene, str]]) -> dict[str, float]:
    scores = [(scene, score_caption(scene, text)) for scene, text in pairs]
    mentions = sum(len(s.mentions) for _, s in scores)
    matched = sum(s.matched for _, s in scores)
    counted = [s for _, s in scores if s.count_stated is not None]
    return {
        "chair_i": _ratio(sum(len(s.hallucinated) for _, s in scores), mentions),
        "chair_s": _ratio(sum(bool(s.hallucinated) for _, s in scores), len(scores)),
        "cover": _ratio(sum(len(s.covered) for _, s in scores), sum(len(sc.objects) for sc, _ in scores)),
        "attribute_error": _ratio(sum(s.attribute_errors for _, s in scores), matched),
        "spatial_error": _ratio(sum(s.spatial_errors for _, s in scores), matched),
        "count_error": _ratio(sum(not s.count_correct for s in counted), len(counted)),
        "mentions_per_caption": _ratio(mentions, len(scores)),
        "num_captions": float(len(scores)),
    }
