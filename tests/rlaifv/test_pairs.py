"""Pair construction: score = −(rejected claims), gap >= 1, at most 2 per instruction, length balance."""

from __future__ import annotations

import random

from vlmalign.pipelines.rlaifv.labelers import accepts
from vlmalign.pipelines.rlaifv.pairs import ScoredResponse, instruction_pairs, length_balance, response_score


def test_accept_rule_on_fixed_labeler_probabilities():
    # P(yes) + P(Yes) vs P(no) + P(No), as the labeler returns them summed
    assert accepts(0.3 + 0.25, 0.4 + 0.05)
    assert not accepts(0.2 + 0.1, 0.6 + 0.1)
    assert not accepts(0.45, 0.45)  # a tie is not an acceptance
    assert not accepts(0.0, 0.0)  # no yes/no word at all


def test_score_counts_rejected_claims():
    assert response_score([True, True, True]) == 0.0
    assert response_score([True, False, False]) == -2.0
    assert response_score([]) == 0.0


def test_pairs_need_a_gap_of_one():
    responses = [ScoredResponse("a", -1, 2), ScoredResponse("b", -1, 3), ScoredResponse("c", -1, 1)]
    assert instruction_pairs(responses, random.Random(0)) == []
    responses.append(ScoredResponse("d", -2, 2))
    assert sorted(instruction_pairs(responses, random.Random(0), max_pairs=10)) == [(0, 3), (1, 3), (2, 3)]


def test_at_most_two_pairs_per_instruction_drawn_by_seed():
    responses = [ScoredResponse(t, s, 2) for t, s in (("a", 0), ("b", -1), ("c", -2), ("d", -3))]
    pairs = instruction_pairs(responses, random.Random(7))
    assert len(pairs) == 2 and all(responses[i].score - responses[j].score >= 1 for i, j in pairs)
    assert pairs == instruction_pairs(responses, random.Random(7))


def test_responses_without_claims_and_identical_texts_are_never_paired():
    responses = [ScoredResponse("", 0, 0), ScoredResponse("x", -1, 1), ScoredResponse("y", -1, 1)]
    assert instruction_pairs(responses, random.Random(0)) == []
    twins = [ScoredResponse("same", 0, 1), ScoredResponse("same", -1, 1)]
    assert instruction_pairs(twins, random.Random(0)) == []


def test_length_balance_drops_the_most_length_biased_pairs_first():
    pair = lambda c, r: {"chosen": " ".join("w" * c), "rejected": " ".join("w" * r)}  # noqa: E731
    pairs = [pair(2, 4), pair(1, 6), pair(3, 1), pair(5, 5)]  # differences -2, -5, +2, 0: mean -1.25
    kept = length_balance(pairs, tolerance=1.0)
    assert kept == [pairs[0], pairs[2], pairs[3]]  # the -5 pair goes: mean 0
    assert length_balance(pairs, tolerance=2.0) == pairs  # already within 2 words
    assert length_balance([pair(1, 9)], tolerance=1.0) == []  # one biased pair: nothing balanced is left
    assert length_balance([], tolerance=1.0) == []
