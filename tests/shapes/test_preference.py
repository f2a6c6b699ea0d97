"""Preference pairs: each error type does what it says, rejected is always worse, the plausibility knob works."""

import random
from collections import Counter

import pytest

from vlmalign.data.shapes import (
    POSITIONS,
    Scene,
    ShapeObject,
    describe,
    generate_scenes,
    parse_count,
    parse_mentions,
    vocabulary,
)
from vlmalign.data.shapes.preference import ERROR_TYPES, check_preference_knobs, make_preference_pair, text_tells
from vlmalign.eval.hallucination import score_caption

SCENES = generate_scenes("train", 200, min_objects=1, max_objects=4)
CROWDED = generate_scenes("train", 60, min_objects=8, max_objects=9)  # few or no free cells


def _defects(scene, text):
    """Wrong claims plus objects the caption leaves out."""
    s = score_caption(scene, text)
    return s.error_count + len(scene.objects) - len(s.covered)


@pytest.mark.parametrize("kind", ERROR_TYPES)
@pytest.mark.parametrize("plausibility", [0.0, 1.0])
def test_every_error_type_makes_rejected_strictly_worse(kind, plausibility):
    for i, scene in enumerate(SCENES + CROWDED):
        num_errors = 1 + i % 3
        pair = make_preference_pair(scene, random.Random(i), {kind: 1.0}, plausibility, num_errors)
        assert pair.rejected != pair.chosen
        assert len(pair.errors) == num_errors
        assert score_caption(scene, pair.chosen).error_count == 0
        assert score_caption(scene, pair.rejected).error_count > 0, pair
        assert _defects(scene, pair.rejected) >= num_errors, pair  # errors never overlap or cancel


def _template(caption):
    words = caption.split()
    return words[0] if words[0] != "the" else ("count_shows" if ":" in words else "shows")


def test_chosen_is_describe_and_rejected_keeps_its_template():
    scene = Scene("s", (ShapeObject("circle", "red", "large", "top left"),
                        ShapeObject("square", "blue", "small", "center")))
    for seed in range(40):
        pair = make_preference_pair(scene, random.Random(seed), {"spatial": 1.0})
        rng = random.Random(seed)
        rng.choice(["prompt", "drawn", "first"])  # make_preference_pair draws the prompt first
        assert pair.chosen == describe(scene, rng)
        assert _template(pair.rejected) == _template(pair.chosen)
        cell_words = {w for p in POSITIONS for w in p.split()}
        assert Counter(w for w in pair.rejected.split() if w not in cell_words) == Counter(
            w for w in pair.chosen.split() if w not in cell_words)  # a move changes only the cell words


def _single(kind, plausibility):
    for i, scene in enumerate(SCENES):
        pair = make_preference_pair(scene, random.Random(i), {kind: 1.0}, plausibility)
        assert pair.errors == (kind,)  # one error of the only weighted type always applies
        yield scene, pair, score_caption(scene, pair.rejected)


@pytest.mark.parametrize("plausibility", [0.0, 1.0])
def test_existence_adds_or_replaces_with_an_absent_pair(plausibility):
    for scene, _pair, s in _single("existence", plausibility):
        present = {o.identity for o in scene.objects}
        assert len(s.hallucinated) == 1 and (s.hallucinated[0].color, s.hallucinated[0].shape) not in present
        assert s.attribute_errors == s.spatial_errors == 0
        assert s.count_stated in (None, len(s.mentions))  # an added object is counted too
        assert len(s.mentions) in (len(scene.objects), len(scene.objects) + 1)


@pytest.mark.parametrize("plausibility", [0.0, 1.0])
def test_attribute_changes_one_size_or_one_colour(plausibility):
    kinds = Counter()
    for scene, _pair, s in _single("attribute", plausibility):
        assert len(s.hallucinated) + s.attribute_errors == 1 and s.spatial_errors == 0
        if s.hallucinated:  # colour change to an absent (colour, shape): same shape, different colour
            wrong = s.hallucinated[0]
            assert wrong.shape in {o.shape for o in scene.objects} and (wrong.color, wrong.shape) not in {
                o.identity for o in scene.objects}
        kinds["colour" if s.hallucinated else "size"] += 1
    assert min(kinds.values()) > 50


@pytest.mark.parametrize("plausibility", [0.0, 1.0])
def test_count_states_a_wrong_count(plausibility):
    for _scene, pair, s in _single("count", plausibility):
        assert s.count_stated is not None and s.count_correct is False and not s.hallucinated
        listed = len(parse_mentions(pair.rejected))
        assert (s.count_stated == listed) == (plausibility == 1.0)


@pytest.mark.parametrize("plausibility", [0.0, 1.0])
def test_spatial_moves_one_object(plausibility):
    for scene, _pair, s in _single("spatial", plausibility):
        assert s.spatial_errors == 1 and not s.hallucinated and s.attribute_errors == 0
        assert s.covered == set(range(len(scene.objects)))
        moved = {m.position for m in s.mentions} - {o.position for o in scene.objects}
        # plausible: to a free cell; otherwise onto another object's cell, unless every object is a twin
        # of the moved one (a lone object, say): then anywhere, plus the generic tell
        assert bool(moved) == (plausibility == 1.0 or len({o.identity for o in scene.objects}) == 1)


@pytest.mark.parametrize("plausibility", [0.0, 1.0])
def test_shape_swaps_one_shape_keeping_the_colour(plausibility):
    for scene, _pair, s in _single("shape", plausibility):
        assert len(s.hallucinated) == 1 and s.attribute_errors == s.spatial_errors == 0
        wrong = s.hallucinated[0]
        assert any(o.color == wrong.color and o.position == wrong.position and o.shape != wrong.shape
                   for o in scene.objects)


def test_crowded_scenes_fall_back_to_errors_that_fit():
    spatial = [make_preference_pair(s, random.Random(i), {"spatial": 1.0}) for i, s in enumerate(CROWDED)]
    assert all(p.errors == ("spatial",) for p in spatial)  # a swap when no cell is free
    one = Scene("o", (ShapeObject("circle", "red", "large", "center"),))
    pair = make_preference_pair(one, random.Random(0), {"spatial": 1.0}, num_errors=3)
    assert pair.errors[0] == "spatial" and len(pair.errors) == 3 and _defects(one, pair.rejected) >= 3


def test_plausible_rejected_texts_have_no_text_only_tells():
    for i, scene in enumerate(SCENES + CROWDED):
        pair = make_preference_pair(scene, random.Random(i), plausibility=1.0, num_errors=1 + i % 3)
        assert text_tells(pair.rejected) == (), pair
        mentions = parse_mentions(pair.rejected)
        cells = [m.position for m in mentions]
        assert len(set(cells)) == len(cells) and cells == sorted(cells, key=POSITIONS.index)  # reading order
        assert parse_count(pair.rejected) in (None, len(mentions))


def test_implausible_rejected_texts_always_have_a_tell():
    for i, scene in enumerate(SCENES + CROWDED):
        pair = make_preference_pair(scene, random.Random(i), plausibility=0.0, num_errors=1 + i % 3)
        assert text_tells(pair.rejected), pair
        assert text_tells(pair.chosen) == ()


def test_plausibility_is_a_probability():
    telling = sum(bool(text_tells(make_preference_pair(s, random.Random(i), plausibility=0.25).rejected))
                  for i, s in enumerate(SCENES))
    assert 0.65 < telling / len(SCENES) < 0.85


def test_text_tells_by_hand():
    assert text_tells("a red circle at the top and a blue square at the top .") == ("duplicate_position",)
    assert text_tells("there are three objects : a red circle in the top .") == ("count_mismatch",)
    assert text_tells("a large red green circle at the top .") == ("conflicting_attribute",)
    assert text_tells("a small large circle at the top .") == ("conflicting_attribute",)
    assert text_tells("there is one object : a red red circle in the top .") == ()


def test_vocabulary_covers_pairs_and_pairs_are_deterministic():
    vocab = set(vocabulary())
    for i, scene in enumerate(SCENES[:100] + CROWDED):
        pair = make_preference_pair(scene, random.Random(i), plausibility=0.5, num_errors=1 + i % 3)
        assert set((pair.prompt + " " + pair.chosen + " " + pair.rejected).split()) <= vocab
    assert make_preference_pair(SCENES[5], random.Random(3)) == make_preference_pair(SCENES[5], random.Random(3))


def test_default_mix_draws_every_error_type():
    drawn = Counter(e for i, s in enumerate(SCENES) for e in make_preference_pair(s, random.Random(i)).errors)
    assert set(drawn) == set(ERROR_TYPES) and min(drawn.values()) > 20


@pytest.mark.parametrize("kwargs, match", [
    (dict(error_mix={"colour": 1.0}), "'colour'.*allowed"),
    (dict(error_mix={"count": -1.0}), "count"),
    (dict(error_mix={"count": 0.0}), "positive weight"),
    (dict(plausibility=1.5), "plausibility"),
    (dict(num_errors=0), "num_errors"),
])
def test_bad_knobs_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_preference_pair(SCENES[0], random.Random(0), **kwargs)
    with pytest.raises(ValueError, match=match):
        check_preference_knobs(**kwargs)
