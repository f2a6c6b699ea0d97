"""Captions (paraphrase templates) and questions of each error type.

All text is lowercase and word-level: punctuation is its own whitespace-separated token, so the
word-level tokenizer needs no subwords and every word maps to one token.

Caption templates (``TEMPLATES``; examples for a large red circle at the top left and a small blue
square at the center):

- ``list``:           "a large red circle at the top left and a small blue square at the center ."
- ``shows``:          "the image shows a large red circle at the top left and a small blue square at the center ."
- ``position_first``: "at the top left there is a large red circle and at the center there is a small blue square ."
- ``count_list``:     "there are two objects : a large red circle in the top left and a small blue square in the ..."
- ``count_shows``:    "the image shows two objects : a large red circle at the top left and a small blue square ..."

Three or more objects are joined as "x , y and z".
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from vlmalign.data.shapes.world import COLORS, POSITIONS, SHAPES, SIZES, Scene, ShapeObject

CAPTION_PROMPTS = ("describe the image .", "what is in the image ?", "describe the shapes in the picture .")
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
PLURALS = {shape: shape + "s" for shape in SHAPES}
QUESTION_KINDS = ("existence", "attribute", "count", "spatial")
# The ones that state the object count come last.
TEMPLATES = ("list", "shows", "position_first", "count_list", "count_shows")
COUNT_TEMPLATES = ("count_list", "count_shows")
# The count-stating template closest to each template (used to force a count statement).
COUNTED_TEMPLATE = {"list": "count_list", "shows": "count_shows", "position_first": "count_list",
                    "count_list": "count_list", "count_shows": "count_shows"}
# Every fixed word the templates and questions use, besides the world's vocabulary.
_GLUE_WORDS = ("a at in the there is are object objects : , and . ? image shows how many what color size where "
               "yes no").split()


@dataclass(frozen=True)
class Phrase:
    """What a caption says about one object. Usually one size and one colour word; preference.py puts two
    conflicting words here to make an error visible from the text alone ("a small large red circle")."""

    shape: str
    position: str
    colors: tuple[str, ...]
    sizes: tuple[str, ...]

    @classmethod
    def of(cls, obj: ShapeObject) -> Phrase:
        return cls(obj.shape, obj.position, (obj.color,), (obj.size,))

    @property
    def adjectives(self) -> str:
        return " ".join((*self.sizes, *self.colors))


def object_phrase(obj: ShapeObject | Phrase, preposition: str = "at") -> str:
    phrase = obj if isinstance(obj, Phrase) else Phrase.of(obj)
    return f"a {phrase.adjectives} {phrase.shape} {preposition} the {phrase.position}"


def _join(phrases: Sequence[str]) -> str:
    return phrases[0] if len(phrases) == 1 else " , ".join(phrases[:-1]) + " and " + phrases[-1]


def render_caption(
    template: str, objects: Sequence[ShapeObject | Phrase], stated_count: int | None = None
) -> str:
    """Caption of ``objects`` in the given order; count templates state ``stated_count`` (default: true count)."""
    count = len(objects) if stated_count is None else stated_count
    phrases = [o if isinstance(o, Phrase) else Phrase.of(o) for o in objects]
    if template == "list":
        return _join([object_phrase(p) for p in phrases]) + " ."
    if template == "shows":
        return "the image shows " + _join([object_phrase(p) for p in phrases]) + " ."
    if template == "position_first":
        return _join([f"at the {p.position} there is a {p.adjectives} {p.shape}" for p in phrases]) + " ."
    if template not in COUNT_TEMPLATES:
        raise ValueError(f"unknown caption template {template!r}; known: {TEMPLATES}")
    if not 0 <= count < len(NUMBERS):
        raise ValueError(f"stated_count={count} has no number word; allowed 0..{len(NUMBERS) - 1}")
    noun = "object" if count == 1 else "objects"
    if template == "count_list":
        verb = "is" if count == 1 else "are"
        return f"there {verb} {NUMBERS[count]} {noun} : " + _join([object_phrase(p, "in") for p in phrases]) + " ."
    return f"the image shows {NUMBERS[count]} {noun} : " + _join([object_phrase(p) for p in phrases]) + " ."


def caption_plan(scene: Scene, rng: random.Random, shuffle: bool = False) -> tuple[str, list[ShapeObject]]:
    """(template, objects in caption order) of ``describe``; preference.py edits this plan to inject errors."""
    template = rng.choice(TEMPLATES)
    objects = list(scene.objects)
    if shuffle:
        rng.shuffle(objects)
    return template, objects


def describe(scene: Scene, rng: random.Random, shuffle: bool = False) -> str:
    """A faithful caption: a paraphrase template drawn by ``rng``, objects in the scene's (reading) order.

    A fixed scan order is what a describer of a grid naturally uses, and it lets a tiny model learn
    *what* is where instead of also having to learn a random order; ``shuffle=True`` draws the order.
    """
    return render_caption(*caption_plan(scene, rng, shuffle))


def existence_question(color: str, shape: str) -> str:
    """The yes/no question POPE asks, in the words the SFT data teaches."""
    return f"is there a {color} {shape} in the image ?"


def one_attribute_existence(scene: Scene, rng: random.Random) -> tuple[str, str]:
    """(question, answer) about one attribute alone: "is there a circle in the image ?" or "is there a red object in
    the image ?", "yes" or "no" with equal odds (a "no" names an attribute no object has, when one exists)."""
    attribute, values = ("shape", SHAPES) if rng.random() < 0.5 else ("color", COLORS)
    present = sorted({getattr(o, attribute) for o in scene.objects})
    absent = [v for v in values if v not in present]
    answer = "yes" if not absent or rng.random() < 0.5 else "no"
    value = rng.choice(present if answer == "yes" else absent)
    noun = value if attribute == "shape" else f"{value} object"
    return f"is there a {noun} in the image ?", answer


def questions(scene: Scene, rng: random.Random, kinds: Sequence[str] = QUESTION_KINDS,
              confusable_negatives: float = 0.5, likely_absent: Sequence[tuple[str, str]] = (),
              likely_negatives: float = 0.0) -> list[tuple[str, str, str]]:
    """(kind, question, answer) triples about ``scene``.

    existence: one present and one absent (colour, shape) pair; the absent one is, with probability
    ``likely_negatives``, one of ``likely_absent`` (what the world's priors expect beside the scene's objects,
    POPE's adversarial kind on world v3), else shares its colour with a present object (another shape) with probability
    ``confusable_negatives``, else any absent pair; attribute: the colour of one object and
    the size of one object; count: objects of one shape (zero allowed); spatial: the position of an
    object whose (colour, shape) is unique in the scene (otherwise the answer would be ambiguous).
    """
    unknown = set(kinds) - set(QUESTION_KINDS)
    if unknown:
        raise ValueError(f"unknown question kinds {sorted(unknown)}; known: {QUESTION_KINDS}")
    present = {o.identity for o in scene.objects}
    identity_counts = {i: sum(o.identity == i for o in scene.objects) for i in present}
    out: list[tuple[str, str, str]] = []
    if "existence" in kinds:
        out.append(("existence", existence_question(*rng.choice(sorted(present))), "yes"))
        absent = [(c, s) for c in COLORS for s in SHAPES if (c, s) not in present]
        # Negatives in the colour of a present object but another shape make the model bind shape to colour:
        # the world v3 base reads colours reliably and answered "yes" to exactly these (docs/foundation.md).
        confusable = [(c, s) for c, s in absent if any(c == pc for pc, _ in present)]
        likely = [p for p in likely_absent if p not in present]
        if likely_negatives > 0 and likely and rng.random() < likely_negatives:
            color, shape = rng.choice(likely)
        else:
            hard = confusable_negatives > 0 and bool(confusable) and rng.random() < confusable_negatives
            color, shape = rng.choice(confusable if hard else absent)
        out.append(("existence", existence_question(color, shape), "no"))
    if "attribute" in kinds:
        obj = rng.choice(scene.objects)
        out.append(("attribute", f"what color is the {obj.shape} at the {obj.position} ?", obj.color))
        out.append(("attribute", f"what size is the {obj.color} {obj.shape} at the {obj.position} ?", obj.size))
    if "count" in kinds:
        shape = rng.choice(SHAPES)
        out.append(("count", f"how many {PLURALS[shape]} are there ?",
                    NUMBERS[sum(o.shape == shape for o in scene.objects)]))
    if "spatial" in kinds:
        unique = [o for o in scene.objects if identity_counts[o.identity] == 1]
        if unique:
            obj = rng.choice(unique)
            out.append(("spatial", f"where is the {obj.color} {obj.shape} ?", obj.position))
    return out


def vocabulary() -> list[str]:
    """Every word text.py and preference.py can emit (prompts, captions, questions, answers, rejected texts)."""
    words = set(" ".join(CAPTION_PROMPTS).split()) | set(_GLUE_WORDS)
    words |= set(SHAPES) | set(PLURALS.values()) | set(COLORS) | set(SIZES) | set(NUMBERS)
    words |= {w for p in POSITIONS for w in p.split()}
    return sorted(words)
