"""Captions (with paraphrase templates) and questions of each error type.

All text is lowercase and word-level: punctuation is its own whitespace-separated token, so the
word-level tokenizer needs no subwords and every word maps to one token.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from vlmalign.data.shapes.world import COLORS, POSITIONS, SHAPES, SIZES, Scene, ShapeObject, generate_scenes

CAPTION_PROMPTS = ("describe the image .", "what is in the image ?", "describe the shapes in the picture .")
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
PLURALS = {shape: shape + "s" for shape in SHAPES}
QUESTION_KINDS = ("existence", "attribute", "count", "spatial")
# Caption templates; the ones that state the object count come last.
TEMPLATES = ("list", "shows", "position_first", "count_list", "count_shows")
COUNT_TEMPLATES = ("count_list", "count_shows")


def object_phrase(obj: ShapeObject) -> str:
    return f"a {obj.size} {obj.color} {obj.shape} at the {obj.position}"


def _join(phrases: Sequence[str]) -> str:
    return phrases[0] if len(phrases) == 1 else " , ".join(phrases[:-1]) + " and " + phrases[-1]


def render_caption(template: str, objects: Sequence[ShapeObject], stated_count: int | None = None) -> str:
    """Caption of ``objects`` in the given order; count templates state ``stated_count`` (default: true count)."""
    count = len(objects) if stated_count is None else stated_count
    if template == "list":
        return _join([object_phrase(o) for o in objects]) + " ."
    if template == "shows":
        return "the image shows " + _join([object_phrase(o) for o in objects]) + " ."
    if template == "position_first":
        return _join([f"at the {o.position} there is a {o.size} {o.color} {o.shape}" for o in objects]) + " ."
    noun = "object" if count == 1 else "objects"
    verb = "is" if count == 1 else "are"
    if template == "count_list":
        return f"there {verb} {NUMBERS[count]} {noun} : " + _join([object_phrase(o) for o in objects]) + " ."
    if template == "count_shows":
        return f"the image shows {NUMBERS[count]} {noun} : " + _join([object_phrase(o) for o in objects]) + " ."
    raise ValueError(f"unknown caption template {template!r}; known: {TEMPLATES}")


def describe(scene: Scene, rng: random.Random) -> str:
    """A faithful caption: random paraphrase template, objects in reading order (top-left to bottom-right).

    A fixed scan order is what a describer of a grid naturally uses, and it lets a tiny model learn
    *what* is where instead of also having to learn a random order.
    """
    return render_caption(rng.choice(TEMPLATES), scene.objects)


def questions(scene: Scene, rng: random.Random, kinds: Sequence[str] = QUESTION_KINDS) -> list[tuple[str, str, str]]:
    """(kind, question, answer) triples about ``scene``; existence asks one present and one absent pair."""
    unknown = set(kinds) - set(QUESTION_KINDS)
    if unknown:
        raise ValueError(f"unknown question kinds {sorted(unknown)}; known: {QUESTION_KINDS}")
    present = {o.identity for o in scene.objects}
    identity_counts = {i: sum(o.identity == i for o in scene.objects) for i in present}
    out: list[tuple[str, str, str]] = []
    if "existence" in kinds:
        color, shape = rng.choice(sorted(present))
        out.append(("existence", f"is there a {color} {shape} in the image ?", "yes"))
        absent = [(c, s) for c in COLORS for s in SHAPES if (c, s) not in present]
        color, shape = rng.choice(absent)
        out.append(("existence", f"is there a {color} {shape} in the image ?", "no"))
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
    """Every word any function of the shapes world can emit."""
    words = set(" ".join(CAPTION_PROMPTS).split())
    words |= set(SHAPES) | set(PLURALS.values()) | set(COLORS) | set(SIZES) | set(NUMBERS)
    words |= {w for p in POSITIONS for w in p.split()}
    words |= set("a at the there is are object objects : , and . ? image shows in how many what color size where "
                 "yes no".split())
    return sorted(words)


def corpus(num_scenes: int = 2000, seed: int = 0) -> Iterator[str]:
    """Prompts, captions, questions and answers for tokenizer training."""
    yield from CAPTION_PROMPTS
    rng = random.Random(f"corpus:{seed}")
    for scene in generate_scenes("corpus", num_scenes, seed, 1, 4):
        yield describe(scene, rng)
        for _, question, answer in questions(scene, rng):
            yield question
            yield answer
