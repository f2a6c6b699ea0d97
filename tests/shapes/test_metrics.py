"""CHAIR/Cover/error rates and POPE, checked against hand computation."""

import pytest

from vlmalign.data.shapes import Scene, ShapeObject, generate_scenes
from vlmalign.eval.hallucination import caption_metrics, score_caption
from vlmalign.eval.pope import POPE_SAMPLINGS, build_pope_probes, pope_metrics

SCENE = Scene("s", (ShapeObject("circle", "red", "large", "top left"),
                    ShapeObject("square", "blue", "small", "center"),
                    ShapeObject("triangle", "green", "small", "bottom")))


def test_score_caption_separates_hallucination_from_attribute_and_spatial_errors():
    text = "a small red circle at the top left , a blue square at the right and a yellow diamond at the top ."
    score = score_caption(SCENE, text)
    assert [m.shape for m in score.hallucinated] == ["diamond"]
    assert score.covered == {0, 1}
    assert score.attribute_errors == 1 and score.spatial_errors == 1 and score.matched == 2


def test_caption_metrics_by_hand():
    captions = [
        "a large red circle at the top left .",                                  # 1 mention, correct
        "there are two objects : a red circle at the top left and a purple square at the center .",  # 1 of 2 hal.
        "the image shows nothing .",                                             # no mentions
    ]
    metrics = caption_metrics([(SCENE, c) for c in captions])
    assert metrics["chair_i"] == pytest.approx(1 / 3)
    assert metrics["chair_s"] == pytest.approx(1 / 3)
    assert metrics["cover"] == pytest.approx(2 / 9)  # object 0 covered in two captions of 3 objects each
    assert metrics["count_error"] == pytest.approx(1.0)  # says two, scene has three
    assert metrics["mentions_per_caption"] == pytest.approx(1.0)


def test_pope_probes_are_balanced_and_negatives_absent():
    scenes = generate_scenes("test", 40, min_objects=1, max_objects=3)
    present = {s.image_id: {o.identity for o in s.objects} for s in scenes}
    for sampling in POPE_SAMPLINGS:
        probes = build_pope_probes(scenes, sampling, seed=0)
        assert sum(p.label for p in probes) == sum(not p.label for p in probes)
        for p in probes:
            assert ((p.color, p.shape) in present[p.image_id]) == p.label
    adversarial = [p for p in build_pope_probes(scenes, "adversarial") if not p.label]
    assert all(any(p.color == c or p.shape == s for c, s in present[p.image_id]) for p in adversarial)
    assert build_pope_probes(scenes, "random", seed=1) == build_pope_probes(scenes, "random", seed=1)
    with pytest.raises(ValueError, match="random"):
        build_pope_probes(scenes, "rare")


def test_pope_metrics_by_hand():
    labels = [True, True, False, False, True]
    answers = [True, None, True, False, True]  # None counts as "no"
    m = pope_metrics(labels, answers)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3) and m["yes_ratio"] == pytest.approx(3 / 5)
    assert m["unanswered"] == pytest.approx(1 / 5)
