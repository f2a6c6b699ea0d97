"""Exact caption hallucination metrics on shapes scenes: CHAIR_i, CHAIR_s, Cover and error rates.

CHAIR (Rohrbach et al. 2018) with object category = (colour, shape): a mention is hallucinated iff
no scene object has its shape and, when the mention states one, its colour. CHAIR_i = hallucinated
mentions / all mentions; CHAIR_s = captions with >= 1 hallucinated mention / captions; Cover =
scene objects mentioned / scene objects (AMBER's coverage), always report it beside CHAIR since a
model can lower CHAIR by saying less. Exact match = captions that mention every scene object and make no
wrong claim (no hallucination, size, position or count error) / captions.

Non-hallucinated mentions are matched one-to-one to scene objects, best agreement first (fewest
contradicted attributes, then most confirmed ones, then text/scene order), so "a red circle" and "a
red circle at the top left" in a scene of two red circles cannot steal each other's match. A mention
left over after every compatible object is taken (the caption repeats an object) is matched to its
best object again: it is not a CHAIR hallucination, but its size/position claims are still checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from vlmalign.data.shapes.parse import Mention, parse_count, parse_mentions
from vlmalign.data.shapes.world import Scene, ShapeObject


@dataclass
class CaptionScore:
    mentions: list[Mention]
    referents: list[int | None] = field(default_factory=list)  # scene object each mention refers to; None: hallucinated
    hallucinated: list[Mention] = field(default_factory=list)
    covered: set[int] = field(default_factory=set)  # indices of scene objects that were mentioned
    attribute_errors: int = 0  # matched mentions whose stated size is wrong
    spatial_errors: int = 0  # matched mentions whose stated position is wrong
    matched: int = 0
    count_stated: int | None = None
    count_correct: bool | None = None

    @property
    def error_count(self) -> int:
        """Every wrong claim: hallucinated mentions, size and position errors, a wrong stated count."""
        return len(self.hallucinated) + self.attribute_errors + self.spatial_errors + (self.count_correct is False)


def compatible(mention: Mention, obj: ShapeObject) -> bool:
    """The mention could refer to the object: same shape and, when stated, same colour."""
    return mention.shape == obj.shape and (mention.color is None or mention.color == obj.color)


def contradictions(mention: Mention, obj: ShapeObject) -> tuple[bool, bool]:
    """(size wrong, position wrong); an unstated attribute is never wrong."""
    return (mention.size is not None and mention.size != obj.size,
            mention.position is not None and mention.position != obj.position)


def _rank(mention: Mention, obj: ShapeObject) -> tuple[int, int]:
    size_wrong, position_wrong = contradictions(mention, obj)
    confirmed = 2 * (mention.position == obj.position) + (mention.size == obj.size)
    return (size_wrong + position_wrong, -confirmed)


def match_mentions(scene: Scene, mentions: Sequence[Mention]) -> list[int | None]:
    """Index of the scene object each mention refers to, or None for a hallucinated mention.

    One-to-one, best agreement first; a mention left over (the caption repeats an object) refers to its
    best object again.
    """
    objects = scene.objects
    candidates = [[j for j, o in enumerate(objects) if compatible(m, o)] for m in mentions]
    pairs = sorted((_rank(mentions[m], objects[j]), m, j) for m, js in enumerate(candidates) for j in js)
    assignment: dict[int, int] = {}
    for _, m, j in pairs:  # greedy one-to-one, best agreement first
        if m not in assignment and j not in assignment.values():
            assignment[m] = j
    return [
        assignment[m] if m in assignment else min(js, key=lambda k: (_rank(mentions[m], objects[k]), k))
        if js else None
        for m, js in enumerate(candidates)
    ]


def score_caption(scene: Scene, text: str) -> CaptionScore:
    score = CaptionScore(parse_mentions(text))
    score.referents = match_mentions(scene, score.mentions)
    for mention, j in zip(score.mentions, score.referents):
        if j is None:
            score.hallucinated.append(mention)
            continue
        size_wrong, position_wrong = contradictions(mention, scene.objects[j])
        score.covered.add(j)
        score.matched += 1
        score.attribute_errors += size_wrong
        score.spatial_errors += position_wrong
    score.count_stated = parse_count(text)
    if score.count_stated is not None:
        score.count_correct = score.count_stated == len(scene.objects)
    return score


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def caption_metrics(pairs: Iterable[tuple[Scene, str]]) -> dict[str, float]:
    """Corpus-level rates over (scene, caption) pairs; every rate is 0.0 when its denominator is 0."""
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
        # The whole scene said and nothing else: every object mentioned, no wrong claim (Synth²'s study metric).
        "exact_match": _ratio(sum(len(s.covered) == len(sc.objects) and s.error_count == 0 for sc, s in scores),
                              len(scores)),
        "mentions_per_caption": _ratio(mentions, len(scores)),
        "num_captions": float(len(scores)),
    }
