"""POPE probes (balanced, negatives absent, each sampling as specified) and metrics by hand."""

from collections import Counter

import pytest

from vlmalign.data.shapes import COLORS, SHAPES, Scene, ShapeObject, generate_scenes
from vlmalign.eval.pope import POPE_SAMPLINGS, build_pope_probes, pope_metrics

SCENES = generate_scenes("test", 60, min_objects=1, max_objects=4)
PRESENT = {s.image_id: {o.identity for o in s.objects} for s in SCENES}


def _scene(image_id, *pairs):
    cells = ("top left", "top", "top right", "left")
    objects = (ShapeObject(shape, color, "small", cell) for (color, shape), cell in zip(pairs, cells))
    return Scene(image_id, tuple(objects))


@pytest.mark.parametrize("sampling", POPE_SAMPLINGS)
def test_probes_are_balanced_and_negatives_absent(sampling):
    probes = build_pope_probes(SCENES, sampling, seed=0)
    assert sum(p.label for p in probes) == sum(not p.label for p in probes)
    for scene in SCENES:
        mine = [p for p in probes if p.image_id == scene.image_id]
        assert {(p.color, p.shape) for p in mine if p.label} == PRESENT[scene.image_id]  # one per distinct pair
        negatives = [(p.color, p.shape) for p in mine if not p.label]
        assert len(set(negatives)) == len(negatives) and not set(negatives) & PRESENT[scene.image_id]
    assert all(p.sampling == sampling and p.question == f"is there a {p.color} {p.shape} in the image ?"
               for p in probes)
    assert build_pope_probes(SCENES, sampling, seed=3) == build_pope_probes(SCENES, sampling, seed=3)


def test_random_negatives_are_spread_and_seeded():
    negatives = Counter((p.color, p.shape) for seed in range(5) for p in build_pope_probes(SCENES, "random", seed)
                        if not p.label)
    assert len(negatives) == 20  # every (colour, shape) pair gets sampled somewhere
    assert build_pope_probes(SCENES, "random", seed=1) != build_pope_probes(SCENES, "random", seed=2)


def test_popular_negatives_are_the_most_frequent_absent_pairs():
    frequency = Counter(o.identity for s in SCENES for o in s.objects)
    for scene in SCENES:
        probes = [p for p in build_pope_probes(SCENES, "popular") if p.image_id == scene.image_id]
        chosen = {(p.color, p.shape) for p in probes if not p.label}
        skipped = {(c, s) for c in "red green blue yellow purple".split()
                   for s in "circle square triangle diamond".split()} - chosen - PRESENT[scene.image_id]
        assert min(frequency[p] for p in chosen) >= max(frequency[p] for p in skipped)
    hand = [_scene("a", ("red", "circle"))] + [_scene(f"b{i}", ("blue", "square")) for i in range(3)]
    first = [p for p in build_pope_probes(hand, "popular") if not p.label]
    assert (first[0].image_id, first[0].color, first[0].shape) == ("a", "blue", "square")


def test_adversarial_negatives_are_cooccurring_then_confusable_first():
    together = Counter(frozenset((p, q)) for s in SCENES for p in PRESENT[s.image_id] for q in PRESENT[s.image_id]
                       if p != q)

    def key(pair, present):
        return (-sum(together[frozenset((pair, q))] for q in present),
                not any(pair[0] == c or pair[1] == s for c, s in present))

    for scene in SCENES:
        present = PRESENT[scene.image_id]
        chosen = [(p.color, p.shape) for p in build_pope_probes(SCENES, "adversarial") if not p.label
                  and p.image_id == scene.image_id]
        others = [(c, s) for c in COLORS for s in SHAPES if (c, s) not in present and (c, s) not in chosen]
        assert all(key(c, present) <= key(o, present) for c in chosen for o in others)
    # blue circles co-occur with red circles elsewhere, so they come first for a red-circle scene
    hand = [_scene("x", ("red", "circle"))] + [_scene(f"y{i}", ("red", "circle"), ("blue", "circle")) for i in range(3)]
    for seed in range(5):
        negative = [p for p in build_pope_probes(hand, "adversarial", seed) if p.image_id == "x" and not p.label]
        assert [(p.color, p.shape) for p in negative] == [("blue", "circle")]


def test_negatives_per_image_and_fallback_to_random():
    scene = _scene("z", ("red", "circle"))
    many = [p for p in build_pope_probes([scene], "adversarial", negatives_per_image=19) if not p.label]
    confusable = [p for p in many if p.color == "red" or p.shape == "circle"]
    assert len(many) == 19 and many[: len(confusable)] == confusable and len(confusable) == 7  # 4 + 3
    assert len([p for p in build_pope_probes([scene], "random", negatives_per_image=50) if not p.label]) == 19
    assert all(p.label for p in build_pope_probes(SCENES, "popular", negatives_per_image=0))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="random"):
        build_pope_probes(SCENES, "rare")
    with pytest.raises(ValueError, match="negatives_per_image"):
        build_pope_probes(SCENES, "random", negatives_per_image=-1)
    with pytest.raises(ValueError, match="labels"):
        pope_metrics([True], [])


def test_pope_metrics_by_hand():
    labels = [True, True, False, False, True]
    answers = [True, None, True, False, True]  # None counts as "no"
    m = pope_metrics(labels, answers)
    assert m == pytest.approx({"accuracy": 3 / 5, "precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3,
                               "yes_ratio": 3 / 5, "unanswered": 1 / 5})
    skewed = pope_metrics([True, False, False, False], [True, True, True, True])
    assert skewed == pytest.approx({"accuracy": 1 / 4, "precision": 1 / 4, "recall": 1.0, "f1": 0.4,
                                    "yes_ratio": 1.0, "unanswered": 0.0})


def test_pope_metrics_guard_zero_divisions():
    silent = pope_metrics([True, False], [None, None])
    assert silent == {"accuracy": 0.5, "precision": 0.0, "recall": 0.0, "f1": 0.0, "yes_ratio": 0.0,
                      "unanswered": 1.0}
    assert all(v == 0.0 for v in pope_metrics([], []).values())


def test_evaluator_reads_a_describe_first_reply_within_its_token_budget(monkeypatch):
    """A model that describes before answering is scored on its first yes/no word, given room to reach it;
    with POPE's one-word budget the same model is unanswered (counted as "no"), never misread."""
    from vlmalign.eval import shapes_evaluator
    from vlmalign.eval.shapes_evaluator import ShapesEvaluator

    def describe_then_answer(backbone, images, prompts, max_new_tokens, batch_size):
        words = [f"the image shows a large red square at the left . {'yes' if 'red' in p else 'no'} ." for p in prompts]
        return [" ".join(w.split()[:max_new_tokens]) for w in words]

    monkeypatch.setattr(shapes_evaluator, "generate_responses", describe_then_answer)
    roomy = ShapesEvaluator(split="val", num_scenes=20, pope_samplings=("random",), pope_max_new_tokens=48)
    said = roomy._pope(backbone=None)
    probes = build_pope_probes(roomy.scenes, "random", seed=0)
    assert said["pope/random/yes_ratio"] == pytest.approx(sum("red" in p.question for p in probes) / len(probes))
    assert said["pope/random/unanswered"] == 0.0
    terse = ShapesEvaluator(split="val", num_scenes=20, pope_samplings=("random",))._pope(backbone=None)
    assert terse["pope/random/unanswered"] == 1.0 and terse["pope/random/yes_ratio"] == 0.0
