"""The term interface and the weighted composite, without a model."""

import pytest
import torch

from vlmalign.errors import ConfigError
from vlmalign.logps import ResponseLogProbs
from vlmalign.objectives import Objective, SFTTerm
from vlmalign.objectives.base import ObjectiveOutput, ObjectiveTerm


class _NeedsRef(ObjectiveTerm):
    views = ("chosen", "rejected")
    needs_reference = True

    def __call__(self, logps, ref):
        return ObjectiveOutput(logps["rejected"].sum.mean() - ref["rejected"].sum.mean())


def _logps(*values, count=2):
    return ResponseLogProbs(torch.tensor(values), torch.full((len(values),), count))


def test_sft_is_token_mean_nll_over_the_batch():
    out = Objective({"sft": SFTTerm()})({"chosen": ResponseLogProbs(torch.tensor([-2.0, -4.0]), torch.tensor([1, 3]))})
    assert out.loss.item() == pytest.approx(6.0 / 4)
    assert out.metrics["loss/sft"].item() == pytest.approx(1.5)
    per_example = Objective({"sft": SFTTerm(reduction="sequence")})(
        {"chosen": ResponseLogProbs(torch.tensor([-2.0, -4.0]), torch.tensor([1, 3]))})
    assert per_example.loss.item() == pytest.approx((2.0 + 4.0 / 3) / 2)
    with pytest.raises(ValueError, match="reduction='sum' is not one of"):
        SFTTerm(reduction="sum")


def test_weights_views_and_reference_flags_compose():
    objective = Objective({"sft": SFTTerm(weight=0.5), "other": _NeedsRef(weight=2.0), "off": SFTTerm(weight=0.0,
                                                                                                    view="x")})
    assert objective.views == ("chosen", "rejected")
    assert objective.needs_reference and "off" not in objective.terms
    logps = {"chosen": _logps(-2.0, -2.0), "rejected": _logps(-3.0, -5.0)}
    out = objective(logps, {"rejected": _logps(-1.0, -1.0)})
    assert out.loss.item() == pytest.approx(0.5 * 1.0 + 2.0 * (-4.0 + 1.0))


def test_missing_reference_and_empty_objective_are_config_errors():
    with pytest.raises(ConfigError, match="reference=none"):
        Objective({"x": _NeedsRef()})({"chosen": _logps(-1.0), "rejected": _logps(-1.0)}, None)
    with pytest.raises(ConfigError, match="empty"):
        Objective({})
    with pytest.raises(ConfigError, match="weight 0"):
        Objective({"sft": SFTTerm(weight=0.0)})


def test_dpo_family_terms_apply_their_loss_to_the_right_statistic():
    from vlmalign.objectives import DPOTerm, HingeTerm, IPOTerm
    from vlmalign.objectives.functional import dpo_loss, hinge_loss, ipo_loss

    counts = torch.tensor([2, 5])
    policy = {"chosen": ResponseLogProbs(torch.tensor([-3.0, -6.0]), counts),
              "rejected": ResponseLogProbs(torch.tensor([-5.0, -4.0]), torch.tensor([4, 1]))}
    ref = {"chosen": ResponseLogProbs(torch.tensor([-4.0, -5.0]), counts),
           "rejected": ResponseLogProbs(torch.tensor([-4.5, -4.5]), torch.tensor([4, 1]))}
    sums = [side[v].sum for side in (policy, ref) for v in ("chosen", "rejected")]
    means = [side[v].mean for side in (policy, ref) for v in ("chosen", "rejected")]
    assert DPOTerm(beta=0.2, label_smoothing=0.1)(policy, ref).loss.item() == pytest.approx(
        dpo_loss(*sums, 0.2, 0.1).mean().item())
    assert HingeTerm(beta=0.2)(policy, ref).loss.item() == pytest.approx(hinge_loss(*sums, 0.2).mean().item())
    # IPO reads length-normalised log-probs (sum / count), which differ from the sums here.
    assert IPOTerm(beta=0.2)(policy, ref).loss.item() == pytest.approx(ipo_loss(*means, 0.2).mean().item())
    assert ipo_loss(*means, 0.2).mean().item() != pytest.approx(ipo_loss(*sums, 0.2).mean().item())
