"""Captions, questions and the mention parser on hand-written and generated text."""

import random

import pytest

from vlmalign.data.shapes import (
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

RED_CIRCLE = ShapeObject("circle", "red", "large", "top left")
BLUE_SQUARE = ShapeObject("square", "blue", "small", "center")
SCENE = Scene("s", (RED_CIRCLE, BLUE_SQUARE))


@pytest.mark.parametrize("text", [
    "a large red circle at the top left and a small blue square at the center .",
    "the image shows a large red circle at the top left and a small blue square at the center .",
    "at the top left there is a large red circle , and at the center there is a small blue square .",
    "there are two objects : a large red circle at the top left and a small blue square at the center .",
])
def test_paraphrases_parse_to_the_same_mentions(text):
    assert parse_mentions(text) == [Mention("circle", "red", "large", "top left"),
                                    Mention("square", "blue", "small", "center")]


def test_messy_and_partial_text():
    assert parse_mentions("a red red circle circle at the") == [Mention("circle", "red", None, None),
                                                               Mention("circle", None, None, None)]
    assert parse_mentions("a green triangle and a square at the bottom right") == [
        Mention("triangle", "green", None, None), Mention("square", None, None, "bottom right")]
    assert parse_mentions("how many circles are there ?") == []
    assert parse_mentions("the image shows nothing .") == []


def test_counts_and_yes_no():
    assert parse_count("there are three objects : a red circle") == 3
    assert parse_count("a red circle at the top .") is None
    assert parse_yes_no("yes") is True and parse_yes_no("no .") is False and parse_yes_no("the") is None


def test_every_generated_caption_round_trips_to_its_scene():
    rng = random.Random(0)
    for scene in generate_scenes("train", 300, min_objects=1, max_objects=4):
        mentions = parse_mentions(describe(scene, rng))
        assert sorted((m.shape, m.color, m.size, m.position) for m in mentions) == sorted(
            (o.shape, o.color, o.size, o.position) for o in scene.objects)


def test_count_template_states_the_true_count():
    assert render_caption("count_list", [RED_CIRCLE]) .startswith("there is one object :")
    assert parse_count(render_caption("count_shows", [RED_CIRCLE, BLUE_SQUARE])) == 2


def test_questions_are_answered_from_the_scene():
    truth = {"what color is the circle at the top left ?": "red", "what color is the square at the center ?": "blue",
             "what size is the red circle at the top left ?": "large", "where is the red circle ?": "top left",
             "what size is the blue square at the center ?": "small", "where is the blue square ?": "center",
             "how many circles are there ?": "one", "how many squares are there ?": "one",
             "how many triangles are there ?": "zero", "how many diamonds are there ?": "zero"}
    asked = set()
    for seed in range(30):
        for kind, question, answer in questions(SCENE, random.Random(seed)):
            if kind != "existence":
                assert truth[question] == answer, question
                asked.add(kind)
    assert asked == {"attribute", "count", "spatial"}
    existence = [(q, a) for k, q, a in questions(SCENE, random.Random(2)) if k == "existence"]
    assert sorted(a for _, a in existence) == ["no", "yes"]
    with pytest.raises(ValueError, match="unknown question kinds"):
        questions(SCENE, random.Random(0), kinds=("colour",))


def test_vocabulary_covers_the_corpus():
    vocab = set(vocabulary())
    assert {w for text in corpus(200) for w in text.split()} <= vocab
