"""Minimal corrections of a model's own caption: the fine-grained pairs of RLHF-V (arXiv 2312.00849).

RLHF-V has annotators rewrite only the hallucinated segments of the policy's response, so chosen and
rejected differ exactly where the model is wrong. In the shapes world the truth is exact: a mention
whose (colour, shape) is not in the scene but whose colour and position match a real object is a
shape error, and replacing that one word corrects it. Captions with any other kind of hallucination
(no same-coloured object at the stated cell) are left out rather than guessed at.
"""

from __future__ import annotations

from vlmalign.data.shapes.parse import parse_mentions, tokenize
from vlmalign.data.shapes.world import SHAPES, Scene


def correct_shape_errors(response: str, scene: Scene) -> str | None:
    """``response`` with each wrong shape word replaced by the true one, or None when it has no shape
    error, has an error a shape swap cannot fix, or its shape words do not map one to one to mentions."""
    words = tokenize(response)
    shape_words = [i for i, word in enumerate(words) if word in SHAPES]
    mentions = parse_mentions(response)
    if not mentions or len(shape_words) != len(mentions):
        return None
    present = {o.identity for o in scene.objects}
    shape_at = {(o.color, o.position): o.shape for o in scene.objects}
    corrected = False
    for index, mention in zip(shape_words, mentions):
        if (mention.color, mention.shape) in present:
            continue
        true_shape = shape_at.get((mention.color, mention.position))
        if true_shape is None:
            return None
        words[index], corrected = true_shape, True
    return " ".join(words) if corrected else None
