"""The preference pair kinds of world v3 have the property each is named for."""

import math

import pytest

from vlmalign.data.shapes import WorldSpec, parse_mentions, text_tells
from vlmalign.data.shapes_preference import ShapesPreferenceDataset
from vlmalign.eval.hallucination import score_caption

WORLD = WorldSpec(color_prior=0.7, cooccurrence=0.7)


def _pairs(kind: str, n: int = 600, split: str = "train"):
    data = ShapesPreferenceDataset(None, split, n, WORLD, error_mix={"shape": 1.0, "attribute": 1.0}, pair_kind=kind)
    return [data.pair_for(i) for i in range(n)]


def test_text_detectable_rejected_answers_carry_a_tell_and_chosen_ones_none():
    for scene, pair in _pairs("text_detectable", 300):
        assert text_tells(pair.rejected), pair.rejected
        assert not text_tells(pair.chosen)
        assert score_caption(scene, pair.rejected).error_count > 0


def test_image_only_rejected_answers_are_fluent_one_object_swaps_to_an_absent_pair():
    for scene, pair in _pairs("image_only", 300):
        assert not text_tells(pair.rejected) and not text_tells(pair.chosen)
        chosen, rejected = pair.chosen.split(), pair.rejected.split()
        assert len(chosen) == len(rejected) and 1 <= sum(a != b for a, b in zip(chosen, rejected)) <= 2
        present = {o.identity for o in scene.objects}
        said = [(m.color, m.shape) for m in parse_mentions(pair.rejected)]
        assert sum(identity not in present for identity in said) == 1  # one hallucinated object, fluent


def _log_prior(world: WorldSpec, text: str) -> float:
    """log P(the caption's objects) under the world's priors (reading order; sizes and cells are uniform)."""
    mentions = parse_mentions(text)
    total, previous = 0.0, None
    for m in mentions:
        total += math.log(world.shape_probability(m.shape, previous) * world.color_probability(m.color, m.shape))
        previous = m.shape
    return total


def test_image_only_pairs_are_exchangeable_as_text():
    # If a text-only model could prefer the more (or less) typical caption, the two sides would differ in how
    # typical they are under the prior. Over many pairs they do not: chosen is the more typical one about half the
    # time and the mean log-prior gap is ~0 (the Metropolis correction of prior_pairs.py is what makes it so).
    pairs = _pairs("image_only", 3000)
    gaps = [_log_prior(WORLD, p.chosen) - _log_prior(WORLD, p.rejected) for _, p in pairs]
    ties = sum(g == 0 for g in gaps)
    chosen_more_typical = sum(g > 0 for g in gaps) / (len(gaps) - ties)
    assert abs(chosen_more_typical - 0.5) < 0.04, chosen_more_typical
    assert abs(sum(gaps) / len(gaps)) < 0.08


def test_injected_plausible_pairs_are_not_exchangeable_under_the_prior():
    # The control for the test above: shape swaps at plausibility 1 are fluent, but they pick the new shape without
    # regard to the prior, so on a world with priors the rejected caption is usually the less typical one.
    data = ShapesPreferenceDataset(None, "train", 2000, WORLD, error_mix={"shape": 1.0}, plausibility=1.0)
    gaps = [_log_prior(WORLD, data.pair_for(i)[1].chosen) - _log_prior(WORLD, data.pair_for(i)[1].rejected)
            for i in range(2000)]
    assert sum(g > 0 for g in gaps) / sum(g != 0 for g in gaps) > 0.6


def test_pairs_are_deterministic_and_scenes_match_the_pairs():
    data = ShapesPreferenceDataset(None, "val", 20, WORLD, pair_kind="image_only")
    again = ShapesPreferenceDataset(None, "val", 20, WORLD, pair_kind="image_only")
    assert [data.pair_for(i) for i in range(20)] == [again.pair_for(i) for i in range(20)]
    assert [s for s, _ in (data.pair_for(i) for i in range(20))] == data.scenes


def test_unknown_pair_kind_is_refused():
    with pytest.raises(ValueError, match="pair_kind='blurry'"):
        ShapesPreferenceDataset(None, "val", 2, WORLD, pair_kind="blurry")
