"""World v3: the settings object, its language priors, the pattern-breaking split and POPE's negatives."""

import subprocess
import sys
from collections import Counter

import pytest

from vlmalign.data.shapes import COLORS, SHAPES, Scene, ShapeObject, WorldSpec, world_spec
from vlmalign.data.shapes.world import COMPANION, USUAL_COLOR
from vlmalign.errors import ConfigError
from vlmalign.eval.pope import PopeStatistics, build_pope_probes

PRIORS = WorldSpec(color_prior=0.7, cooccurrence=0.6, max_objects=3)


def test_scenes_are_deterministic_across_processes_and_prefix_stable():
    assert PRIORS.scenes("train", 40) == PRIORS.scenes("train", 40)
    assert PRIORS.scenes("train", 60)[:40] == PRIORS.scenes("train", 40)
    code = ("from vlmalign.data.shapes import WorldSpec; "
            "print(WorldSpec(color_prior=0.7, cooccurrence=0.6).scenes('test', 5, counter_prior=True))")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert runs == {str(PRIORS.scenes("test", 5, counter_prior=True)) + "\n"}


def test_no_prior_gives_the_first_worlds_scenes():
    # Strengths 0 draw no extra random number, so the first world's scenes (and every number measured on them)
    # are reproducible from WorldSpec().
    from vlmalign.data.shapes import generate_scenes

    assert WorldSpec(seed=3).scenes("val", 20) == generate_scenes("val", 20, seed=3)
    objects = [o for s in WorldSpec().scenes("train", 3000) for o in s.objects]
    usual = sum(o.color == USUAL_COLOR[o.shape] for o in objects) / len(objects)
    assert abs(usual - 1 / len(COLORS)) < 0.02


@pytest.mark.parametrize("color_prior", [0.0, 0.4, 0.8])
def test_usual_colour_frequency_matches_the_knob(color_prior):
    objects = [o for s in WorldSpec(color_prior=color_prior).scenes("train", 4000) for o in s.objects]
    usual = sum(o.color == USUAL_COLOR[o.shape] for o in objects) / len(objects)
    expected = color_prior + (1 - color_prior) / len(COLORS)
    assert abs(usual - expected) < 0.015, (usual, expected)


@pytest.mark.parametrize("cooccurrence", [0.0, 0.5, 0.9])
def test_companion_frequency_matches_the_knob(cooccurrence):
    world = WorldSpec(cooccurrence=cooccurrence, min_objects=2, max_objects=2)
    pairs = [s.objects for s in world.scenes("train", 5000)]
    companions = sum(COMPANION[a.shape] == b.shape for a, b in pairs) / len(pairs)
    expected = cooccurrence + (1 - cooccurrence) / len(SHAPES)
    assert abs(companions - expected) < 0.02, (companions, expected)


def test_counter_prior_scenes_break_every_pattern_and_differ_from_the_usual_split():
    usual = PRIORS.scenes("test", 300)
    counter = PRIORS.scenes("test", 300, counter_prior=True)
    for scene in counter:
        assert all(o.color != USUAL_COLOR[o.shape] for o in scene.objects)
        shapes = [o.shape for o in scene.objects]
        assert not any(COMPANION[a] == b for a in shapes for b in shapes)
        assert scene.image_id.startswith("test:counter-")
    assert {s.image_id for s in usual}.isdisjoint(s.image_id for s in counter)
    assert any(o.color == USUAL_COLOR[o.shape] for s in usual for o in s.objects)


def test_identity_posterior_is_the_exact_conditional():
    # Brute force: P(object 1 = x | objects 0 and 2) from the generative process by enumeration of its factors.
    world = WorldSpec(color_prior=0.5, cooccurrence=0.7)
    scene = Scene("x", (ShapeObject("circle", "red", "small", "top left"),
                        ShapeObject("square", "blue", "large", "top"),
                        ShapeObject("triangle", "green", "small", "top right")))
    posterior = world.identity_posterior(scene, 1)
    assert abs(sum(posterior.values()) - 1) < 1e-12

    def joint(shape, color):
        p = world.shape_probability(shape, "circle") * world.shape_probability("triangle", shape)
        return p * world.color_probability(color, shape)

    total = sum(joint(s, c) for s in SHAPES for c in COLORS)
    for (color, shape), p in posterior.items():
        assert abs(p - joint(shape, color) / total) < 1e-12
    assert max(posterior, key=posterior.get) == ("blue", "square")  # the companion of the circle, usual colour


def test_pope_negatives_follow_the_world_statistics_on_both_splits():
    stats = PopeStatistics.of_world(PRIORS, num_scenes=2000)
    usual_pairs = {(USUAL_COLOR[s], s) for s in SHAPES}
    top = [pair for pair, _ in stats.frequency.most_common(4)]
    assert set(top) == usual_pairs  # the usual colour of each shape is the most frequent object
    counter = PRIORS.scenes("test", 60, counter_prior=True)
    popular = [p for p in build_pope_probes(counter, "popular", statistics=stats) if not p.label]
    assert Counter((p.color, p.shape) in usual_pairs for p in popular)[True] >= 0.9 * len(popular)
    for probe in build_pope_probes(counter, "adversarial", statistics=stats):
        if probe.label:
            continue
        scene = next(s for s in counter if s.image_id == probe.image_id)
        present = {o.identity for o in scene.objects}
        assert (probe.color, probe.shape) not in present
    # Adversarial negatives of a lone red circle: what co-occurs with it most, the blue square first.
    lone = Scene("lone", (ShapeObject("circle", "red", "large", "center"),))
    first = [p for p in build_pope_probes([lone], "adversarial", statistics=stats, negatives_per_image=1)
             if not p.label][0]
    assert (first.color, first.shape) == ("blue", "square")
    random_negatives = Counter((p.color, p.shape) for p in build_pope_probes(counter, "random", statistics=stats)
                               if not p.label)
    assert len(random_negatives) > 10  # spread over many absent pairs, not the prior's favourites


@pytest.mark.parametrize("settings, match", [
    (dict(min_objects=2, max_objects=10), "max_objects=10"),
    (dict(min_objects=0), "min_objects=0"),
    (dict(min_objects=3, max_objects=2), "min_objects=3, max_objects=2"),
    (dict(color_prior=1.5), "color_prior=1.5 must be a probability"),
    (dict(cooccurrence=-0.1), "cooccurrence=-0.1"),
    (dict(image_size=8), "image_size=8 is out of range"),
    (dict(seed="x"), "seed='x' must be an integer"),
    (dict(companion={**COMPANION, "circle": "circle"}), "companions must be pairs of two different shapes"),
    (dict(companion={**COMPANION, "circle": "triangle"}), r"circle -> triangle, but triangle -> diamond"),
    (dict(companion={"circle": "square", "square": "circle"}), "needs one companion shape"),
    (dict(usual_color={**USUAL_COLOR, "circle": "pink"}), "needs one colour"),
])
def test_impossible_settings_are_clear_config_errors(settings, match):
    with pytest.raises(ConfigError, match=match) as error:
        world_spec(settings, "world")
    assert str(error.value).startswith("world: ")


def test_unknown_settings_are_named():
    with pytest.raises(ConfigError, match=r"world: unknown settings \['colour_prior'\]"):
        world_spec({"colour_prior": 0.5})


def test_evaluator_scores_the_pattern_breaking_scenes_beside_the_usual_ones(monkeypatch):
    # A caption that always names the prior's favourite (a red circle) is a hallucination on every counter-prior
    # scene (none holds an object in its usual colour) and only sometimes on the usual ones.
    from vlmalign.eval import shapes_evaluator

    def prior_led(backbone, images, prompts, max_new_tokens, batch_size):
        return ["the image shows a large red circle at the left ." for _ in prompts]

    monkeypatch.setattr(shapes_evaluator, "generate_responses", prior_led)
    world = WorldSpec(color_prior=0.7, cooccurrence=0.7)
    evaluator = shapes_evaluator.ShapesEvaluator(split="val", num_scenes=40, world=world, counter_prior_scenes=30,
                                                 pope_samplings=())
    metrics = evaluator.evaluate(backbone=None).metrics
    assert metrics["counter_prior/chair_i"] == 1.0 and metrics["counter_prior/num_captions"] == 30
    assert 0.0 < metrics["chair_i"] < 1.0 and metrics["num_captions"] == 40
    with pytest.raises(ConfigError, match="eval.counter_prior_scenes=-1"):
        shapes_evaluator.ShapesEvaluator(counter_prior_scenes=-1)
