"""Rule-based G for the shapes world, where the scene is exact ground truth.

The rejected caption is parsed and scored against the scene with the evaluator's own code
(``score_caption``), so a "wrong claim" here is exactly what CHAIR and the error rates count; every
wrong claim becomes corrective turns whose answers are read off the scene, never off the text:

- a hallucinated (colour, shape) pair -> existence "is there a purple triangle in the image ?" "no";
  when it took the cell of a real, otherwise unmentioned object, that object is corrected too: its
  colour ("what color is the circle at the top left ?" "red") if only the colour was wrong, else its
  existence ("is there a red circle in the image ?" "yes"; the shapes world's shape swap lands here);
- a wrong size -> "what size is the red circle at the top left ?" "large";
- a wrong position -> "is there a red circle at the bottom ?" "no", and "where is the red circle ?"
  "top left" when the (colour, shape) is unique in the scene (otherwise the answer would be ambiguous);
- a wrong stated count -> "how many objects are there ?" "two"; when the caption also lists a wrong
  number of objects, the per-shape counts it gets wrong and the real objects it left out.

Each turn is labelled with the codebook type whose template wrote it. The chosen caption is not
consulted: with the scene at hand it adds nothing (it is the faithful caption of that scene).
Questions use the codebook templates re-spaced for the word-level shapes tokenizer and match the
forms of ``text.questions``; a template word outside the shapes vocabulary is a ConfigError, since
an unknown word would silently become <unk> in training. No randomness: the same input gives the
same turns in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vlmalign.data.shapes.parse import Mention, tokenize
from vlmalign.data.shapes.text import NUMBERS, PLURALS, vocabulary
from vlmalign.data.shapes.world import SHAPES, Scene, ShapeObject
from vlmalign.errors import ConfigError, DataError
from vlmalign.eval.hallucination import compatible, contradictions, score_caption
from vlmalign.negatives.codebook import Codebook, load_codebook
from vlmalign.negatives.interface import NegativeBuilder, PreferenceSample, Turn

VOCABULARY = frozenset(vocabulary())


def _name(color: str | None, shape: str) -> str:
    return f"{color} {shape}" if color else shape


class _Turns:
    """Collects turns in order, once each, in shapes-tokenizer spelling."""

    def __init__(self, codebook: Codebook) -> None:
        self.codebook = codebook
        self.turns: list[Turn] = []

    def ask(self, error_type: str, template: str, answer: str, **fields: str) -> None:
        entry = self.codebook[error_type]
        question = " ".join(tokenize(entry.question(template, **fields)))
        unknown = sorted({w for w in f"{question} {answer}".split() if w not in VOCABULARY})
        if unknown:
            raise ConfigError(f"codebook template {entry.name}.{template} gives words {unknown} that the shapes "
                              "tokenizer does not know (see vlmalign/data/shapes/text.py vocabulary())")
        if all(t.question != question for t in self.turns):
            self.turns.append(Turn(question, answer, entry.name))


def corrective_turns(scene: Scene, rejected: str, codebook: Codebook | None = None) -> list[Turn]:
    """Turns correcting every wrong claim ``rejected`` makes about ``scene`` ([] when it makes none)."""
    score = score_caption(scene, rejected)
    if score.error_count == 0:
        return []
    out = _Turns(codebook or load_codebook())
    objects = scene.objects
    covered = score.covered
    for mention, j in zip(score.mentions, score.referents):
        if j is None:
            _correct_hallucination(out, scene, mention, covered)
            continue
        size_wrong, position_wrong = contradictions(mention, objects[j])
        if size_wrong:
            obj = objects[j]
            out.ask("attribute", "size", obj.size, object=_name(obj.color, obj.shape), position=obj.position)
        if position_wrong:
            _correct_position(out, scene, mention, objects[j])
    if score.count_correct is False:
        _correct_count(out, scene, score.mentions, covered)
    return out.turns


def _correct_hallucination(out: _Turns, scene: Scene, mention: Mention, covered: set[int]) -> None:
    out.ask("existence", "present", "no", object=_name(mention.color, mention.shape))
    # The real object in the claimed cell, if no other mention describes it: the caption replaced it.
    replaced = [o for j, o in enumerate(scene.objects)
                if mention.position is not None and o.position == mention.position and j not in covered]
    if len(replaced) != 1:
        return
    obj = replaced[0]
    if obj.shape == mention.shape:  # only the colour is wrong: an attribute error
        out.ask("attribute", "color", obj.color, shape=obj.shape, position=obj.position)
    else:  # another object altogether (incl. the shapes world's shape swap): an existence error
        out.ask("existence", "present", "yes", object=_name(obj.color, obj.shape))


def _correct_position(out: _Turns, scene: Scene, mention: Mention, obj: ShapeObject) -> None:
    assert mention.position is not None  # a wrong position is a stated one
    there = any(compatible(mention, o) and o.position == mention.position for o in scene.objects)
    if not there:  # answers come from the scene: skip a "no" that would be false
        out.ask("spatial", "at", "no", object=_name(mention.color, mention.shape), position=mention.position)
    if sum(o.identity == obj.identity for o in scene.objects) == 1:
        out.ask("spatial", "where", obj.position, object=_name(obj.color, obj.shape))


def _correct_count(out: _Turns, scene: Scene, mentions: Sequence[Mention], covered: set[int]) -> None:
    out.ask("count", "total", NUMBERS[len(scene.objects)])
    if len(mentions) == len(scene.objects):
        return  # the listed objects are right; only the stated number was wrong
    for shape in SHAPES:
        stated = sum(m.shape == shape for m in mentions)
        true = sum(o.shape == shape for o in scene.objects)
        if stated != true:
            out.ask("count", "of_shape", NUMBERS[true], plural=PLURALS[shape])
    for j, obj in enumerate(scene.objects):
        if j not in covered:  # dropped from the list: say it is there
            out.ask("existence", "present", "yes", object=_name(obj.color, obj.shape))


class ShapesRuleBuilder(NegativeBuilder):
    """G(y_l; y_w, Q) with the scene as ground truth; see the module docstring for the rules."""

    # The shapes world has no scene-level facts (setting, weather, ...), so "scene" never comes up here.
    supported_error_types = ("existence", "attribute", "count", "spatial")
    VERSION = 1  # bump when the rules change, so resumed outputs are not mixed across versions

    def __init__(self, codebook: Codebook | None = None) -> None:
        super().__init__()
        self.codebook = codebook or load_codebook()
        missing = [t for t in self.supported_error_types if self.codebook.lookup(t) is None]
        if missing:
            raise ConfigError(f"the codebook has no error type(s) {missing}, which the shapes rules write")

    @property
    def identity(self) -> dict[str, Any]:
        return {"builder": "shapes-rules", "version": self.VERSION, "codebook": self.codebook.fingerprint()}

    def build(self, sample: PreferenceSample) -> list[Turn]:
        if sample.scene is None:
            raise DataError(f"{sample.origin or sample.id}: sample {sample.id!r} has no 'scene'; the rule-based "
                            "builder needs the ground-truth scene (use the LLM builder for image-only data)")
        return corrective_turns(sample.scene, sample.rejected, self.codebook)
