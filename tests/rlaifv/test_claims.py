"""Divide: claims and their yes/no questions from hand-made shapes responses; their truth in a scene."""

from __future__ import annotations

from vlmalign.data.shapes import Scene, ShapeObject
from vlmalign.data.shapes.claims import (
    ShapesClaimSplitter,
    WholeResponseSplitter,
    claim_holds,
    count_claim,
    object_claim,
)

SCENE = Scene("s", (ShapeObject("circle", "red", "large", "top left"),
                    ShapeObject("square", "blue", "small", "center")))
TWO = "a large red circle at the top left and a small blue {} at the center ."


def questions(text: str) -> list[str]:
    return [c.question for c in ShapesClaimSplitter().split(text)]


def test_each_object_mention_is_one_claim_with_its_stated_attributes():
    assert questions("the image shows a large red circle at the top left and a small blue square at the center .") \
        == ["is there a large red circle at the top left ?", "is there a small blue square at the center ?"]
    assert questions("at the top left there is a large red circle .") == [
        "is there a large red circle at the top left ?"]


def test_missing_attributes_are_left_out_of_the_question():
    assert questions("a blue square and a circle at the right .") == ["is there a blue square ?",
                                                                      "is there a circle at the right ?"]


def test_a_stated_count_is_a_claim_of_its_own():
    assert questions("there are two objects : a red circle in the top left and a blue square in the center .") == [
        "is there a red circle at the top left ?", "is there a blue square at the center ?", "are there two objects ?"]
    assert questions("the image shows one object : a red circle at the top left .")[-1] == "is there one object ?"


def test_questions_negations_and_text_without_shapes_give_no_claims():
    assert questions("is there a red circle ?") == []
    assert questions("there is no red circle .") == []
    assert questions("describe the image .") == []
    assert questions("") == []


def test_object_claims_hold_iff_some_object_matches_every_stated_attribute():
    assert claim_holds(object_claim("circle", "red", "large", "top left").fact, SCENE)
    assert claim_holds(object_claim("circle").fact, SCENE)
    assert claim_holds(object_claim("square", position="center").fact, SCENE)
    assert not claim_holds(object_claim("circle", "blue").fact, SCENE)  # hallucinated (colour, shape)
    assert not claim_holds(object_claim("circle", "red", "small").fact, SCENE)  # wrong size
    assert not claim_holds(object_claim("square", "blue", position="top left").fact, SCENE)  # wrong position
    assert not claim_holds(object_claim("triangle").fact, SCENE)


def test_count_and_whole_response_claims():
    assert claim_holds(count_claim(2).fact, SCENE) and not claim_holds(count_claim(3).fact, SCENE)
    [whole] = WholeResponseSplitter().split(TWO.format("square"))
    assert whole.question == "a large red circle at the top left and a small blue square at the center ?"
    assert claim_holds(whole.fact, SCENE)
    [wrong] = WholeResponseSplitter().split(TWO.format("circle"))
    assert not claim_holds(wrong.fact, SCENE)
    assert WholeResponseSplitter().split("  ") == []


def test_labeler_training_questions_are_balanced_and_labelled_by_the_scene():
    import random

    from vlmalign.data.shapes import generate_scenes
    from vlmalign.data.shapes_claims import rationale, verification_question

    for i, scene in enumerate(generate_scenes("val", 40)):
        for true in (True, False):
            rng = random.Random(f"{i}:{true}")
            claim = verification_question(scene, rng, true, whole_response_fraction=0.3)
            assert claim_holds(claim.fact, scene) == true, claim.question
            said = rationale(claim, scene, rng)
            if claim.fact["kind"] == "object" and claim.fact["position"]:  # the labeler looks at the claimed cell
                assert said.startswith(f"at the {claim.fact['position']} there ")
