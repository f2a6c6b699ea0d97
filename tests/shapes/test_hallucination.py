"""CHAIR / Cover / error rates, checked against hand computation."""

import pytest

from vlmalign.data.shapes import Mention, Scene, ShapeObject
from vlmalign.eval.hallucination import caption_metrics, score_caption

SCENE = Scene("s", (ShapeObject("circle", "red", "large", "top left"),
                    ShapeObject("square", "blue", "small", "center"),
                    ShapeObject("triangle", "green", "small", "bottom")))
TWINS = Scene("t", (ShapeObject("circle", "red", "large", "top left"),
                    ShapeObject("circle", "red", "small", "center")))


def test_score_caption_separates_hallucination_from_attribute_and_spatial_errors():
    text = "a small red circle at the top left , a blue square at the right and a yellow diamond at the top ."
    score = score_caption(SCENE, text)
    assert score.hallucinated == [Mention("diamond", "yellow", None, "top")]
    assert score.covered == {0, 1}
    assert score.attribute_errors == 1 and score.spatial_errors == 1 and score.matched == 2
    assert score.count_stated is None and score.count_correct is None
    assert score.error_count == 3


def test_a_colour_is_part_of_the_identity_but_may_be_left_out():
    assert score_caption(SCENE, "a purple circle at the top left .").hallucinated  # wrong colour: hallucinated
    unstated = score_caption(SCENE, "a circle at the top left and a diamond .")
    assert unstated.covered == {0} and unstated.hallucinated == [Mention("diamond", None, None, None)]


def test_matching_is_one_to_one_and_best_agreement_first():
    # a mention-order greedy match would give "a red circle" the top-left circle and then find the
    # second mention wrong twice; the best-agreement match finds no error
    score = score_caption(TWINS, "a red circle and a large red circle at the top left .")
    assert score.covered == {0, 1} and score.attribute_errors == score.spatial_errors == 0
    swapped = score_caption(TWINS, "a small red circle at the top left and a large red circle at the center .")
    assert swapped.covered == {0, 1} and swapped.attribute_errors + swapped.spatial_errors == 2


def test_a_repeated_object_is_not_hallucinated_but_its_claims_are_checked():
    one = Scene("o", (ShapeObject("circle", "red", "large", "top left"),))
    score = score_caption(one, "a red circle at the top left and a red circle at the bottom .")
    assert not score.hallucinated and score.matched == 2 and score.covered == {0} and score.spatial_errors == 1


def test_caption_metrics_by_hand():
    captions = [
        # 2 mentions, both right (position-first paraphrase)
        "at the top left there is a large red circle and at the bottom there is a small green triangle .",
        # 3 mentions: wrong size, wrong cell, a hallucinated yellow diamond; the count (three) is right
        "there are three objects : a small red circle in the top left , a blue square in the right and a yellow "
        "diamond in the top .",
        # 2 mentions, the purple square hallucinated; the count (two) is wrong
        "the image shows two objects : a large red circle at the top left and a purple square at the center .",
        "the image shows nothing .",  # no mentions at all
    ]
    metrics = caption_metrics([(SCENE, c) for c in captions])
    assert metrics == pytest.approx({
        "chair_i": 2 / 7,  # 2 hallucinated of 7 mentions
        "chair_s": 2 / 4,
        "cover": 5 / 12,  # covered 2 + 2 + 1 + 0 of 4 x 3 objects
        "attribute_error": 1 / 5,  # over 5 matched mentions
        "spatial_error": 1 / 5,
        "count_error": 1 / 2,  # two captions state a count, one is wrong
        "exact_match": 0.0,  # none names all 3 objects without a wrong claim (positives: tests/synth2/test_parts.py)
        "mentions_per_caption": 7 / 4,
        "num_captions": 4.0,
    })


def test_caption_metrics_of_nothing_are_zero():
    metrics = caption_metrics([])
    assert set(metrics) == {"chair_i", "chair_s", "cover", "attribute_error", "spatial_error", "count_error",
                            "exact_match", "mentions_per_caption", "num_captions"}
    assert all(v == 0.0 for v in metrics.values())
    silent = caption_metrics([(SCENE, "")])
    assert silent["chair_i"] == 0.0 and silent["cover"] == 0.0 and silent["num_captions"] == 1.0
