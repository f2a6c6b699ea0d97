"""Divide: split a response into atomic claims, each with the yes/no question a labeler answers.

RLAIF-V (arXiv 2405.17220, §2.2) splits a response into atomic claims and rewrites each claim as a
polar question, so the labeler verifies one simple fact at a time instead of judging a whole
response (the "self-rewarding" ablation, ``whole_response_claim``). For the shapes grammar the split
is exact and rule-based (the caption parser of the evaluator); free text goes through an LLM
(``vlmalign.pipelines.rlaifv.llm_claims``).

Every question uses only words of the shapes vocabulary, so the word-level tokenizer (and with it the
cached base model's fingerprint) is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from vlmalign.data.shapes.parse import parse_count, parse_mentions, tokenize
from vlmalign.data.shapes.text import NUMBERS
from vlmalign.data.shapes.world import Scene


@dataclass(frozen=True)
class Claim:
    """One atomic fact a response states, and the yes/no question that checks it.

    ``fact`` is the structured content when it is known (shapes: shape/colour/size/position or a count),
    which lets the oracle labeler check it against the scene; ``None`` for free-text claims.
    """

    text: str
    question: str
    fact: dict | None = None


def object_claim(shape: str, color: str | None = None, size: str | None = None,
                 position: str | None = None) -> Claim:
    """"there is a large red circle at the top left", with the attributes the response stated."""
    words = " ".join(w for w in (size, color, shape) if w)
    where = f" at the {position}" if position else ""
    fact = {"kind": "object", "shape": shape, "color": color, "size": size, "position": position}
    return Claim(f"there is a {words}{where}", f"is there a {words}{where} ?", fact)


def count_claim(count: int) -> Claim:
    noun, verb = ("object", "is") if count == 1 else ("objects", "are")
    return Claim(f"there {verb} {NUMBERS[count]} {noun}", f"{verb} there {NUMBERS[count]} {noun} ?",
                 {"kind": "count", "count": count})


def whole_response_claim(response: str) -> Claim:
    """The self-rewarding baseline's single question: the whole response asked back as one yes/no question
    ("the image shows a red circle at the top ?"); its ``fact`` keeps the response for the oracle."""
    words = tokenize(response)
    while words and words[-1] in {".", "?", "!"}:
        words.pop()
    return Claim(" ".join(words), " ".join([*words, "?"]), {"kind": "response", "text": response})


class ShapesClaimSplitter:
    """Rule-based split of shapes-world text: one claim per object mention, one for a stated count.

    Mentions come from the same parser CHAIR uses, so a claim is exactly what the evaluator would
    count: a hallucinated object, a wrong size or position, or a wrong stated count is a false claim.
    """

    def split(self, response: str) -> list[Claim]:
        claims = [object_claim(m.shape, m.color, m.size, m.position) for m in parse_mentions(response)]
        count = parse_count(response)
        if count is not None and 0 < count < len(NUMBERS):
            claims.append(count_claim(count))
        return claims


def claim_holds(fact: dict, scene: Scene) -> bool:
    """Ground truth of a structured claim in ``scene`` (the oracle labeler and the labeler's training data)."""
    if fact["kind"] == "count":
        return fact["count"] == len(scene.objects)
    if fact["kind"] == "response":
        from vlmalign.eval.hallucination import score_caption

        score = score_caption(scene, fact["text"])
        return bool(score.mentions) and score.error_count == 0
    if fact["kind"] != "object":
        raise ValueError(f"unknown claim kind {fact['kind']!r}")
    return any(
        o.shape == fact["shape"] and all(fact[k] in (None, getattr(o, k)) for k in ("color", "size", "position"))
        for o in scene.objects
    )


class WholeResponseSplitter:
    """No divide (the self-rewarding baseline): the whole response is one claim the labeler accepts or not."""

    def split(self, response: str) -> list[Claim]:
        return [whole_response_claim(response)] if response.strip() else []
