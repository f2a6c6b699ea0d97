"""Captions, questions and the mention parser on hand-written, generated and messy text."""

import random

import pytest

from vlmalign.data.shapes import (
    COLORS,
    SHAPES,
    Mention,
    Scene,
    ShapeObject,
    corpus,
    describe,
    generate_scenes,
    parse_count,
    parse_mentions,
    parse_yes_no,
    questions,
    render_caption,
    vocabulary,
)
from vlmalign.data.shapes.text import TEMPLATES
from vlmalign.eval.hallucination import caption_metrics

RED_CIRCLE = ShapeObject("circle", "red", "large", "top left")
BLUE_SQUARE = ShapeObject("square", "blue", "small", "center")
SCENE = Scene("s", (RED_CIRCLE, BLUE_SQUARE))
BOTH = [Mention("circle", "red", "large", "top left"), Mention("square", "blue", "small", "center")]


@pytest.mark.parametrize("text", [
    "a large red circle at the top left and a small blue square at the center .",
    "the image shows a large red circle at the top left and a small blue square at the center .",
    "at the top left there is a large red circle and at the center there is a small blue square .",
    "at the top left there is a large red circle , and at the center there is a small blue square .",
    "at the top left there is a large red circle at the center there is a small blue square",  # no breaks
    "there are two objects : a large red circle in the top left and a small blue square in the center .",
    "the image shows two objects : a large red circle at the top left and a small blue square at the center .",
    "A large red circle at the top left, and a small blue square at the center.",  # untokenized punctuation
])
def test_paraphrases_parse_to_the_same_mentions(text):
    assert parse_mentions(text) == BOTH


@pytest.mark.parametrize("text, expected", [
    ("a red red circle circle at the", [Mention("circle", "red", None, None), Mention("circle", None, None, None)]),
    ("a green triangle and a square at the bottom right",
     [Mention("triangle", "green", None, None), Mention("square", None, None, "bottom right")]),
    ("a large red circle at the top left and a small blu", [Mention("circle", "red", "large", "top left")]),
    ("a shiny big red thing circle near the left", [Mention("circle", "red", None, "left")]),
    ("a small large red circle at the top", [Mention("circle", "red", "large", "top")]),  # last word wins
    ("a red diamond at the bottom , a red diamond at the bottom .",
     [Mention("diamond", "red", None, "bottom")] * 2),
    ("there is no red circle but a blue square", [Mention("square", "blue", None, None)]),
    ("two yellow triangles at the right", [Mention("triangle", "yellow", None, "right")]),
    ("how many circles are there ?", []),
    ("is there a red circle in the image ? yes .", []),
    ("a purple diamond . how many red circles", [Mention("diamond", "purple", None, None)]),
    ("the image shows nothing .", []),
    ("", []),
])
def test_messy_partial_and_non_claiming_text(text, expected):
    assert parse_mentions(text) == expected


def test_counts_and_yes_no():
    assert parse_count("there are three objects : a red circle") == 3
    assert parse_count("the image shows one object : a red circle .") == 1
    assert parse_count("a red circle at the top . two circles") is None  # "two circles" is not a total
    assert parse_count("how many objects are there ?") is None
    assert parse_yes_no("yes") is True and parse_yes_no("no .") is False and parse_yes_no("the") is None
    assert parse_yes_no("no, yes") is False and parse_yes_no("Yes.") is True


def _objects(scene):
    return sorted((o.shape, o.color, o.size, o.position) for o in scene.objects)


def test_every_generated_caption_round_trips_to_its_scene():
    rng = random.Random(0)
    scenes = generate_scenes("train", 300, min_objects=1, max_objects=4)
    captions = [describe(scene, rng, shuffle=i % 2 == 1) for i, scene in enumerate(scenes)]
    for scene, caption in zip(scenes, captions):
        assert sorted((m.shape, m.color, m.size, m.position) for m in parse_mentions(caption)) == _objects(scene)
        assert parse_count(caption) in (None, len(scene.objects))
    metrics = caption_metrics(zip(scenes, captions))
    assert metrics["chair_i"] == 0.0 and metrics["cover"] == 1.0 and metrics["count_error"] == 0.0
    assert metrics["attribute_error"] == 0.0 and metrics["spatial_error"] == 0.0


def _template_of(caption):
    if caption.startswith("there "):
        return "count_list"
    if caption.startswith("the image shows"):
        return "count_shows" if " : " in caption else "shows"
    return "position_first" if caption.startswith("at the") else "list"


def test_captions_use_every_template_and_stay_short_lowercase_and_tokenized():
    rng = random.Random(1)
    four = generate_scenes("val", 200, min_objects=4, max_objects=4)
    captions = [describe(s, rng) for s in four]
    for caption in captions:
        assert caption == caption.lower() and caption.endswith(" .")
        assert len(caption.split()) <= 45
        assert all(len(w) == 1 or w.isalpha() for w in caption.split())  # punctuation is its own token
    assert {_template_of(c) for c in captions} == set(TEMPLATES)
    assert len(set(captions[:50])) == 50


def test_templates_render_as_documented():
    assert render_caption("list", [RED_CIRCLE]) == "a large red circle at the top left ."
    assert render_caption("count_list", [RED_CIRCLE]).startswith("there is one object : a large red circle in")
    assert render_caption("count_shows", [RED_CIRCLE, BLUE_SQUARE]).startswith("the image shows two objects :")
    assert render_caption("position_first", [RED_CIRCLE, BLUE_SQUARE, RED_CIRCLE]) == (
        "at the top left there is a large red circle , at the center there is a small blue square "
        "and at the top left there is a large red circle .")
    assert parse_count(render_caption("count_shows", [RED_CIRCLE], stated_count=3)) == 3
    with pytest.raises(ValueError, match="template"):
        render_caption("poem", [RED_CIRCLE])


def test_describe_is_deterministic_and_shuffle_only_reorders():
    scene = generate_scenes("train", 1, min_objects=4, max_objects=4)[0]
    assert describe(scene, random.Random(5)) == describe(scene, random.Random(5))
    orders = {tuple(m.position for m in parse_mentions(describe(scene, random.Random(i), shuffle=True)))
              for i in range(20)}
    assert len(orders) > 1 and all(sorted(o) == sorted(x.position for x in scene.objects) for o in orders)


def test_questions_are_answered_from_the_scene():
    truth = {"what color is the circle at the top left ?": "red", "what color is the square at the center ?": "blue",
             "what size is the red circle at the top left ?": "large", "where is the red circle ?": "top left",
             "what size is the blue square at the center ?": "small", "where is the blue square ?": "center",
             "how many circles are there ?": "one", "how many squares are there ?": "one",
             "how many triangles are there ?": "zero", "how many diamonds are there ?": "zero"}
    asked = set()
    for seed in range(30):
        for kind, question, answer in questions(SCENE, random.Random(seed)):
            if kind == "existence":
                color, shape = question.split()[3:5]
                assert answer == ("yes" if (color, shape) in {("red", "circle"), ("blue", "square")} else "no")
            else:
                assert truth[question] == answer, question
            asked.add(kind)
    assert asked == {"existence", "attribute", "count", "spatial"}
    existence = [(q, a) for k, q, a in questions(SCENE, random.Random(2)) if k == "existence"]
    assert sorted(a for _, a in existence) == ["no", "yes"]
    assert {k for k, _, _ in questions(SCENE, random.Random(0), kinds=("count",))} == {"count"}
    with pytest.raises(ValueError, match="unknown question kinds"):
        questions(SCENE, random.Random(0), kinds=("colour",))


def _existence_negative(scene: Scene, rng: random.Random, rate: float) -> tuple[str, str]:
    [question] = [q for k, q, a in questions(scene, rng, ("existence",), confusable_negatives=rate) if a == "no"]
    color, shape = question.split()[3:5]
    return color, shape


def test_confusable_existence_negatives_share_a_colour_with_the_scene():
    def shares(pair: tuple[str, str]) -> bool:
        return any(pair[0] == o.color for o in SCENE.objects)

    always = [_existence_negative(SCENE, random.Random(seed), 1.0) for seed in range(100)]
    assert all(shares(pair) for pair in always)
    half = [shares(_existence_negative(SCENE, random.Random(seed), 0.5)) for seed in range(400)]
    never = [shares(_existence_negative(SCENE, random.Random(seed), 0.0)) for seed in range(400)]
    assert sum(never) / 400 + 0.1 < sum(half) / 400 < 1.0  # a mix, clearly above the uniform draw's share
    # Rate 0 draws nothing extra, so the tokenizer corpus (and the token ids trained from it) never moves.
    rng_a, rng_b = random.Random(5), random.Random(5)
    questions(SCENE, rng_a, ("existence",), confusable_negatives=0.0)
    rng_b.choice(sorted({o.identity for o in SCENE.objects}))
    rng_b.choice([(c, s) for c in COLORS for s in SHAPES if (c, s) not in {o.identity for o in SCENE.objects}])
    assert rng_a.random() == rng_b.random()


def test_spatial_questions_only_about_unique_objects():
    twins = Scene("t", (RED_CIRCLE, ShapeObject("circle", "red", "small", "bottom")))
    assert all(k != "spatial" for seed in range(20) for k, _, _ in questions(twins, random.Random(seed)))
    assert questions(twins, random.Random(0), ("attribute",))[0][2] in COLORS


def test_vocabulary_covers_the_corpus():
    vocab = set(vocabulary())
    texts = list(corpus(300))
    assert {w for text in texts for w in text.split()} <= vocab
    assert {"yes", "no", "zero", "four", ":", ",", ".", "?"} <= vocab
    assert len(vocab) == len(vocabulary()) and list(corpus(20, seed=1)) == list(corpus(20, seed=1))
