"""Rule-based G on the shapes world: hand-made scenes per error type, truthfulness, vocabulary, determinism."""

import random
import re

import pytest

from vlmalign.data.shapes import ERROR_TYPES, Scene, ShapeObject, generate_scenes, make_preference_pair, questions
from vlmalign.data.shapes.text import NUMBERS, PLURALS, vocabulary
from vlmalign.errors import DataError
from vlmalign.negatives import PreferenceSample, ShapesRuleBuilder, Turn, corrective_turns, load_codebook

FAITHFUL = "a large red circle at the top left , a small blue square at the center and a small green triangle at the " \
           "bottom ."
TWINS = Scene("twins", (ShapeObject("circle", "red", "large", "top left"),
                        ShapeObject("circle", "red", "small", "center")))


def turns(scene, rejected):
    return [(t.error_type, t.question, t.answer) for t in corrective_turns(scene, rejected)]


# One hand-written rejected caption per kind of error, with the exact turns it must produce.
CASES = {
    "existence: an added object": (
        FAITHFUL[:-2] + ", and a small purple diamond at the right .",
        [("existence", "is there a purple diamond in the image ?", "no")]),
    "existence: a replaced object": (
        FAITHFUL.replace("large red circle", "large yellow diamond"),
        [("existence", "is there a yellow diamond in the image ?", "no"),
         ("existence", "is there a red circle in the image ?", "yes")]),
    "existence: a shape swap (the shapes world's 'shape' error)": (
        FAITHFUL.replace("red circle", "red triangle"),
        [("existence", "is there a red triangle in the image ?", "no"),
         ("existence", "is there a red circle in the image ?", "yes")]),
    "attribute: a wrong colour": (
        FAITHFUL.replace("red circle", "purple circle"),
        [("existence", "is there a purple circle in the image ?", "no"),
         ("attribute", "what color is the circle at the top left ?", "red")]),
    "attribute: a wrong size": (
        FAITHFUL.replace("large red", "small red"),
        [("attribute", "what size is the red circle at the top left ?", "large")]),
    "count: a wrong stated count": (
        "there are four objects : " + FAITHFUL.replace(" at ", " in "),
        [("count", "how many objects are there ?", "three")]),
    "count: a dropped object": (
        "there are two objects : a large red circle in the top left and a small blue square in the center .",
        [("count", "how many objects are there ?", "three"),
         ("count", "how many triangles are there ?", "one"),
         ("existence", "is there a green triangle in the image ?", "yes")]),
    "spatial: a moved object": (
        FAITHFUL.replace("circle at the top left", "circle at the top right"),
        [("spatial", "is there a red circle at the top right ?", "no"),
         ("spatial", "where is the red circle ?", "top left")]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_error_gets_exactly_its_corrective_turns(scene, case):
    rejected, expected = CASES[case]
    assert turns(scene, rejected) == expected


def test_the_rules_cover_every_codebook_type_the_shapes_world_has():
    # "scene" (setting, weather, ...) does not exist in the shapes world; the LLM builder covers it
    written = {t[0] for _, expected in CASES.values() for t in expected}
    assert written == set(ShapesRuleBuilder.supported_error_types) == set(load_codebook().names) - {"scene"}


def test_a_position_of_an_object_with_a_twin_is_not_asked_with_where():
    # two red circles: "where is the red circle ?" has no single answer, so only the false claim is refuted
    rejected = "a large red circle at the bottom and a small red circle at the center ."
    assert turns(TWINS, rejected) == [("spatial", "is there a red circle at the bottom ?", "no")]


@pytest.mark.parametrize("text", [
    FAITHFUL,
    "at the top left there is a large red circle , at the center there is a small blue square and at the bottom "
    "there is a small green triangle .",
    "the image shows three objects : " + FAITHFUL,
    "a red circle and a square .",  # says less, but nothing wrong
    "the image shows nothing .",
])
def test_responses_without_errors_get_no_turns(scene, text):
    assert corrective_turns(scene, text) == []


# The question forms of text.questions(), plus "is there a X at the P ?"; each with its true answer.
def true_answer(scene: Scene, question: str) -> str:
    objs = scene.objects
    if m := re.fullmatch(r"is there a (?:(\w+) )?(\w+) in the image \?", question):
        return "yes" if any(o.shape == m[2] and m[1] in (None, o.color) for o in objs) else "no"
    if m := re.fullmatch(r"is there a (?:(\w+) )?(\w+) at the ([\w ]+) \?", question):
        return "yes" if any(o.shape == m[2] and m[1] in (None, o.color) and o.position == m[3] for o in objs) else "no"
    if m := re.fullmatch(r"what color is the (\w+) at the ([\w ]+) \?", question):
        (obj,) = [o for o in objs if o.shape == m[1] and o.position == m[2]]
        return obj.color
    if m := re.fullmatch(r"what size is the (\w+) (\w+) at the ([\w ]+) \?", question):
        (obj,) = [o for o in objs if (o.color, o.shape, o.position) == (m[1], m[2], m[3])]
        return obj.size
    if question == "how many objects are there ?":
        return NUMBERS[len(objs)]
    if m := re.fullmatch(r"how many (\w+) are there \?", question):
        return NUMBERS[sum(PLURALS[o.shape] == m[1] for o in objs)]
    if m := re.fullmatch(r"where is the (\w+) (\w+) \?", question):
        (obj,) = [o for o in objs if o.identity == (m[1], m[2])]
        return obj.position
    raise AssertionError(f"not a shapes question form: {question!r}")


def generated_pairs(num_scenes=40):
    for plausibility in (1.0, 0.0):
        for kind in ERROR_TYPES:
            for i, scene in enumerate(generate_scenes("negatives-test", num_scenes, 0, 1, 4)):
                rng = random.Random(f"{kind}:{plausibility}:{i}")
                yield kind, scene, make_preference_pair(scene, rng, {kind: 1.0}, plausibility, 1 + i % 2)


def test_the_oracle_reads_every_question_form_of_text_questions():
    for scene in generate_scenes("negatives-oracle", 30, 0, 1, 4):
        for _, question, answer in questions(scene, random.Random(scene.image_id)):
            assert true_answer(scene, question) == answer


def test_generated_pairs_get_true_turns_in_shapes_words_naming_the_injected_type():
    codebook, words = load_codebook(), set(vocabulary())
    for kind, scene, pair in generated_pairs():
        built = corrective_turns(scene, pair.rejected)
        assert built, (kind, pair.rejected)
        if len(pair.errors) == 1:  # (a later error can undo an earlier one's defect, e.g. re-fix a count)
            assert codebook[pair.errors[0]].name in {t.error_type for t in built}, (pair.rejected, built)
        for turn in built:
            assert set(f"{turn.question} {turn.answer}".split()) <= words
            assert turn.answer == true_answer(scene, turn.question), (pair.rejected, turn)
        assert corrective_turns(scene, pair.chosen) == []


def test_building_is_deterministic():
    samples = [PreferenceSample(scene.image_id, "describe the image .", pair.chosen, pair.rejected, scene=scene)
               for _, scene, pair in generated_pairs(5)]
    first = [ShapesRuleBuilder().build(s) for s in samples]
    second = [ShapesRuleBuilder().build(s) for s in reversed(samples)][::-1]
    assert first == second
    assert all(isinstance(t, Turn) for ts in first for t in ts)


def test_builder_counts_and_needs_a_scene(scene):
    builder = ShapesRuleBuilder()
    good = PreferenceSample("a", "describe the image .", FAITHFUL, CASES["attribute: a wrong size"][0], scene=scene)
    clean = PreferenceSample("b", "describe the image .", FAITHFUL, FAITHFUL, scene=scene)
    outcomes = list(builder.build_many([good, clean]))
    assert [len(o.turns) for o in outcomes] == [1, 0] and not any(o.is_rejected for o in outcomes)
    assert (builder.stats.built, builder.stats.empty, builder.stats.turns) == (1, 1, 1)
    with pytest.raises(DataError, match="pairs.jsonl:7.*no 'scene'"):
        builder.build(PreferenceSample("c", "p", "x", "y", image="x.png", origin="pairs.jsonl:7"))
