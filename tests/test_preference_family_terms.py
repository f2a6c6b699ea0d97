"""The new terms on per-view log-probs (no model): which statistic each reads, KTO's views as labels, BCO's
running shift, config errors before anything is built, and reference-free terms with a reference they don't need."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from tests.hydra_utils import compose_train
from vlmalign.errors import ConfigError, DataError
from vlmalign.job import warn_unused_reference
from vlmalign.logps import ResponseLogProbs
from vlmalign.objectives import (
    BCOTerm,
    DPOPositiveTerm,
    KTOPairTerm,
    KTOTerm,
    LengthNormalisedDPOTerm,
    Objective,
    ORPOTerm,
    SimPOTerm,
)
from vlmalign.objectives.functional import bco_loss, dpo_loss, dpo_positive_loss
from vlmalign.objectives.functional_kto import kto_loss, kto_pair_loss
from vlmalign.objectives.functional_reference_free import orpo_loss, simpo_loss
from vlmalign.reference import FrozenCopyReference, NoReference
from vlmalign.utils.instantiate import build


def _lp(sums, counts):
    return ResponseLogProbs(torch.tensor(sums, dtype=torch.float64), torch.tensor(counts))


POLICY = {"chosen": _lp([-3.0, -6.0], [2, 5]), "rejected": _lp([-5.0, -4.0], [4, 1])}
REFERENCE = {"chosen": _lp([-4.0, -5.0], [2, 5]), "rejected": _lp([-4.5, -4.5], [4, 1])}


def test_reference_free_terms_read_token_means_and_no_reference():
    means = {view: lp.sum / lp.count for view, lp in POLICY.items()}
    simpo = Objective({"simpo": SimPOTerm(beta=2.0, gamma=1.0)})
    assert not simpo.needs_reference
    out = simpo(POLICY, None)
    assert out.loss.item() == pytest.approx(simpo_loss(means["chosen"], means["rejected"], 2.0, 1.0).mean().item())
    assert out.metrics["rewards/margins"].item() == pytest.approx(2.0 * (means["chosen"] - means["rejected"]).mean())
    orpo = Objective({"orpo": ORPOTerm(lambda_=0.1)})
    out = orpo(POLICY, None)
    assert out.loss.item() == pytest.approx(orpo_loss(means["chosen"], means["rejected"], 0.1).mean().item())
    assert out.metrics["nll"].item() == pytest.approx(-means["chosen"].mean().item())


def test_reference_terms_read_their_statistic():
    sums = [POLICY[v].sum for v in ("chosen", "rejected")] + [REFERENCE[v].sum for v in ("chosen", "rejected")]
    means = [lp[v].mean for lp in (POLICY, REFERENCE) for v in ("chosen", "rejected")]
    assert LengthNormalisedDPOTerm(beta=5.0)(POLICY, REFERENCE).loss.item() == pytest.approx(
        dpo_loss(*means, 5.0).mean().item())
    assert DPOPositiveTerm(beta=0.1, lambda_=50.0)(POLICY, REFERENCE).loss.item() == pytest.approx(
        dpo_positive_loss(*sums, 0.1, 50.0).mean().item())
    assert KTOPairTerm(beta=0.1)(POLICY, REFERENCE).loss.item() == pytest.approx(
        kto_pair_loss(*sums, 0.1).mean().item())


def test_bco_shift_is_the_running_mean_of_training_rewards():
    term = BCOTerm(beta=0.5)
    with torch.no_grad():  # before any training batch: the batch's own mean, and nothing is recorded
        first = term(POLICY, REFERENCE)
    rewards = torch.cat([0.5 * (POLICY[v].sum - REFERENCE[v].sum) for v in ("chosen", "rejected")])
    assert first.metrics["bco/delta"].item() == pytest.approx(rewards.mean().item()) and term.reward_count == 0
    term(POLICY, REFERENCE)  # training: δ over this batch's 4 rewards
    shifted = {v: _lp((POLICY[v].sum + 2.0).tolist(), POLICY[v].count.tolist()) for v in POLICY}
    out = term(shifted, REFERENCE)  # δ over all 8 rewards so far
    expected_delta = (2 * rewards.sum().item() + 4 * 0.5 * 2.0) / 8
    assert out.metrics["bco/delta"].item() == pytest.approx(expected_delta)
    sums = [shifted[v].sum for v in ("chosen", "rejected")] + [REFERENCE[v].sum for v in ("chosen", "rejected")]
    assert out.loss.item() == pytest.approx(bco_loss(*sums, 0.5, expected_delta).mean().item())
    with torch.no_grad():  # validation reads δ without moving it
        assert term(POLICY, REFERENCE).metrics["bco/delta"].item() == pytest.approx(expected_delta)
    assert term.reward_count == 8


def _unpaired(desirable_rows, sums, mismatched):
    """KTO's views for a batch: each row's response under its label's view, an empty row (count 0) under the other."""
    label = torch.tensor(desirable_rows)
    sums = torch.tensor(sums, dtype=torch.float64)
    counts = torch.full((len(sums),), 3)
    zero = torch.zeros_like(sums)
    return {"desirable": ResponseLogProbs(torch.where(label, sums, zero), torch.where(label, counts, 0)),
            "undesirable": ResponseLogProbs(torch.where(label, zero, sums), torch.where(label, 0, counts)),
            "mismatched": ResponseLogProbs(torch.tensor(mismatched, dtype=torch.float64), counts)}


def test_kto_term_reads_labels_from_its_views():
    policy = _unpaired([True, False, True], [-2.0, -3.0, -4.0], [-5.0, -6.0, -7.0])
    ref = _unpaired([True, False, True], [-3.0, -2.0, -4.5], [-6.0, -6.0, -6.5])
    out = Objective({"kto": KTOTerm(beta=0.1, desirable_weight=1.0, undesirable_weight=1.5)})(policy, ref)
    point = (1.0 + 0.0 - 0.5) / 3  # mismatched log-ratios 1, 0, −0.5
    expected = kto_loss(torch.tensor([-2.0, -3.0, -4.0], dtype=torch.float64),
                        torch.tensor([-3.0, -2.0, -4.5], dtype=torch.float64), torch.tensor([True, False, True]),
                        point, 0.1, 1.0, 1.5).mean()
    assert out.loss.item() == pytest.approx(expected.item())
    assert out.metrics["kl"].item() == pytest.approx(point)
    assert out.metrics["rewards/chosen"].item() == pytest.approx(0.1 * (1.0 + 0.5) / 2)
    assert out.metrics["kto/desirable_fraction"].item() == pytest.approx(2 / 3)
    one_class = _unpaired([True, True, True], [-2.0, -3.0, -4.0], [-5.0, -6.0, -7.0])
    assert "rewards/rejected" not in KTOTerm()(one_class, one_class).metrics  # absent, not 0
    paired = {**policy, "undesirable": policy["desirable"]._replace(count=torch.full((3,), 3))}
    with pytest.raises(DataError, match="exactly one of the views 'desirable' and 'undesirable'"):
        KTOTerm()(paired, ref)


def test_bad_hyper_parameters_name_the_term_and_key():
    for make, match in ((lambda: SimPOTerm(beta=0.0), "SimPO term: beta=0.0"),
                        (lambda: SimPOTerm(winner="chosen", loser="chosen"), "winner and loser"),
                        (lambda: ORPOTerm(lambda_=-1.0), "ORPO term: lambda_=-1.0"),
                        (lambda: BCOTerm(beta=-0.1), "BCO term: beta=-0.1"),
                        (lambda: DPOPositiveTerm(lambda_=-5.0), "DPO-Positive term: lambda_=-5.0"),
                        (lambda: KTOTerm(undesirable_weight=0.0), "undesirable_weight=0.0")):
        with pytest.raises(ConfigError, match=match):
            make()


def test_reference_free_objectives_with_and_without_a_reference(tmp_path, caplog):
    cfg = compose_train(["objective=simpo"], tmp_path)  # train.yaml's default reference is frozen
    objective = build(cfg.objective, "objective")
    with caplog.at_level(logging.WARNING, logger="vlmalign"):
        message = warn_unused_reference(cfg, objective)
    assert "['simpo'] read no reference policy" in message and "pass reference=none" in caplog.text
    assert warn_unused_reference(compose_train(["objective=simpo", "reference=none"], tmp_path), objective) is None
    assert warn_unused_reference(cfg, build(compose_train(["objective=kto"], tmp_path).objective, "objective")) is None
    assert NoReference.serving_problems(objective) == [] and FrozenCopyReference.serving_problems(objective) == []
    kto = build(compose_train(["objective=kto"], Path(tmp_path)).objective, "objective")
    assert "need a reference policy but reference=none" in NoReference.serving_problems(kto)[0]


def test_composed_objectives_declare_their_views(tmp_path):
    views = {name: build(compose_train([f"objective={name}"], tmp_path).objective, "objective").views
             for name in ("simpo_conditional", "mpo", "kto", "orpo")}
    assert views["simpo_conditional"] == ("chosen", "rejected", "chosen_corrupted")
    assert views["mpo"] == ("chosen", "rejected")
    assert views["kto"] == ("desirable", "undesirable", "mismatched")
    mpo = build(compose_train(["objective=mpo"], tmp_path).objective, "objective")
    assert {name: term.weight for name, term in mpo.terms.items()} == {"dpo": 0.8, "bco": 0.2, "sft": 1.0}
