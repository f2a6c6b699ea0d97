"""KTO, SimPO, ORPO, BCO, DPO-Positive and length-normalised DPO: hand-computed values, the papers' formulas
written independently in plain Python floats on random inputs (float64, max abs error < 1e-9), gradient signs."""

from __future__ import annotations

import math
import random

import pytest
import torch

from vlmalign.objectives.functional import bco_loss, dpo_loss, dpo_positive_loss
from vlmalign.objectives.functional_kto import kto_loss, kto_pair_loss, kto_reference_point
from vlmalign.objectives.functional_reference_free import log_odds, odds_ratio_loss, orpo_loss, simpo_loss

TOLERANCE = 1e-9


def _t(*values):
    return torch.tensor(values, dtype=torch.float64, requires_grad=True)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _log_sigmoid(x: float) -> float:
    return math.log(_sigmoid(x))


# The papers' formulas, one example at a time, in floats (no torch, none of the code under test).
def _simpo(mean_w, mean_l, beta, gamma):  # Meng et al. 2024, Eq. 6
    return -_log_sigmoid(beta * mean_w - beta * mean_l - gamma)


def _orpo(mean_w, mean_l, lam):  # Hong et al. 2024, Eqs. 2, 4, 6, 7: odds = P / (1 - P), P = exp(mean log-prob)
    p_w, p_l = math.exp(mean_w), math.exp(mean_l)
    odds_ratio = (p_w / (1 - p_w)) / (p_l / (1 - p_l))
    return -mean_w - lam * _log_sigmoid(math.log(odds_ratio))


def _bco(s_w, s_l, ref_w, ref_l, beta, delta):  # Jung et al. 2024: each response classified alone, shifted by δ
    return -_log_sigmoid(beta * (s_w - ref_w) - delta) - _log_sigmoid(-(beta * (s_l - ref_l) - delta))


def _dpop(s_w, s_l, ref_w, ref_l, beta, lam):  # Pal et al. 2024, Eq. 3
    inner = (s_w - ref_w) - (s_l - ref_l) - lam * max(0.0, ref_w - s_w)
    return -_log_sigmoid(beta * inner)


def _kto(policy, ref, desirable, mismatched, mismatched_ref, beta, lam_d, lam_u):  # Ethayarajh et al. 2024, §4.1
    z0 = max(0.0, sum(m - r for m, r in zip(mismatched, mismatched_ref)) / len(mismatched))
    out = []
    for s, s_ref, good in zip(policy, ref, desirable):
        reward = s - s_ref
        value = lam_d * _sigmoid(beta * (reward - z0)) if good else lam_u * _sigmoid(beta * (z0 - reward))
        out.append((lam_d if good else lam_u) - value)
    return out


def _random(n, low, high, seed):
    rng = random.Random(seed)
    return [rng.uniform(low, high) for _ in range(n)]


def _max_error(torch_values, python_values):
    return max(abs(a - b) for a, b in zip(torch_values.tolist(), python_values))


def test_hand_values():
    # SimPO: m_w = −1, m_l = −2, β = 2, γ = 1: −log σ(2 − 1) = log(1 + e^−1)
    assert simpo_loss(_t(-1.0), _t(-2.0), 2.0, 1.0).item() == pytest.approx(math.log1p(math.exp(-1)))
    # ORPO: P_w = 1/2 (odds 1), P_l = 1/4 (odds 1/3): L_OR = −log σ(log 3) = log(4/3); NLL = log 2
    assert odds_ratio_loss(_t(math.log(0.5)), _t(math.log(0.25))).item() == pytest.approx(math.log(4 / 3))
    assert orpo_loss(_t(math.log(0.5)), _t(math.log(0.25)), 0.1).item() == pytest.approx(
        math.log(2) + 0.1 * math.log(4 / 3))
    # BCO: β = 1, r_w = 2, r_l = −1, δ = 0.5: both logits are 1.5
    z = torch.zeros(1, dtype=torch.float64)
    assert bco_loss(_t(2.0), _t(-1.0), z, z, 1.0, 0.5).item() == pytest.approx(2 * math.log1p(math.exp(-1.5)))
    # DPOP: β = 1, λ = 2; chosen 1 nat under the reference, rejected too: Δ = 0, penalty 1: −log σ(−2)
    ref_w, ref_l = torch.tensor([-2.0], dtype=torch.float64), torch.tensor([-4.0], dtype=torch.float64)
    below = dpo_positive_loss(_t(-3.0), _t(-5.0), ref_w, ref_l, 1.0, 2.0)
    assert below.item() == pytest.approx(math.log1p(math.e ** 2))
    # ... and with the chosen response at or above the reference, DPOP is DPO
    above = (_t(-1.0), _t(-5.0), ref_w, ref_l)
    assert dpo_positive_loss(*above, 1.0, 2.0).item() == pytest.approx(dpo_loss(*above, 1.0).item())
    # kto_pair: r_w = (1, 3) (z_w = 2), r_l = (−1, −3) (z_l = max(0, −2) = 0), β = 1
    pair = kto_pair_loss(_t(1.0, 3.0), _t(-1.0, -3.0), torch.zeros(2, dtype=torch.float64),
                         torch.zeros(2, dtype=torch.float64), 1.0)
    expected = [0.5 * ((1 - _sigmoid(1.0)) + (1 - _sigmoid(2 + 1))),
                0.5 * ((1 - _sigmoid(3.0)) + (1 - _sigmoid(2 + 3)))]
    assert pair.tolist() == pytest.approx(expected)


def test_kto_reference_point_on_a_toy_batch():
    # mismatched log-ratios 0.5, −1, 2, 0.3: z_0 = max(0, 1.8 / 4) = 0.45
    policy = torch.tensor([-10.5, -12.0, -8.0, -9.7], dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([-11.0, -11.0, -10.0, -10.0], dtype=torch.float64)
    point = kto_reference_point(policy, ref)
    assert point.item() == pytest.approx(0.45)
    assert not point.requires_grad  # detached: the paper does not back-propagate through z_0
    assert kto_reference_point(ref - 1.0, ref).item() == 0.0  # a negative mean KL estimate is clamped at 0
    # desirable r = 1 and undesirable r = −2 at z_0 = 0.45, β = 0.1, λ_D = 1, λ_U = 2
    losses = kto_loss(_t(1.0, -2.0), torch.zeros(2, dtype=torch.float64), torch.tensor([True, False]), point,
                      0.1, 1.0, 2.0)
    assert losses.tolist() == pytest.approx([1 - _sigmoid(0.1 * (1 - 0.45)), 2 * (1 - _sigmoid(0.1 * (0.45 + 2)))])


def test_against_the_published_formulas_on_random_inputs():
    n = 64
    s_w, s_l = _random(n, -60, -1, 0), _random(n, -60, -1, 1)
    ref_w, ref_l = _random(n, -60, -1, 2), _random(n, -60, -1, 3)
    m_w, m_l = _random(n, -6, -0.01, 4), _random(n, -6, -0.01, 5)
    as_t = lambda values: torch.tensor(values, dtype=torch.float64)  # noqa: E731
    for beta, gamma in ((2.0, 1.0), (0.5, 0.0), (2.5, 1.4)):
        assert _max_error(simpo_loss(as_t(m_w), as_t(m_l), beta, gamma),
                          [_simpo(a, b, beta, gamma) for a, b in zip(m_w, m_l)]) < TOLERANCE
    for lam in (0.1, 1.0):
        assert _max_error(orpo_loss(as_t(m_w), as_t(m_l), lam),
                          [_orpo(a, b, lam) for a, b in zip(m_w, m_l)]) < TOLERANCE
    for beta, delta in ((0.1, 0.0), (0.1, 0.7), (1.0, -2.0)):
        assert _max_error(bco_loss(as_t(s_w), as_t(s_l), as_t(ref_w), as_t(ref_l), beta, delta),
                          [_bco(*row, beta, delta) for row in zip(s_w, s_l, ref_w, ref_l)]) < TOLERANCE
    for beta, lam in ((0.1, 50.0), (0.5, 5.0), (0.1, 0.0)):
        assert _max_error(dpo_positive_loss(as_t(s_w), as_t(s_l), as_t(ref_w), as_t(ref_l), beta, lam),
                          [_dpop(*row, beta, lam) for row in zip(s_w, s_l, ref_w, ref_l)]) < TOLERANCE
    rng = random.Random(6)
    desirable = [rng.random() < 0.4 for _ in range(n)]
    mismatched, mismatched_ref = _random(n, -60, -1, 7), _random(n, -60, -1, 8)
    for beta, lam_d, lam_u in ((0.1, 1.0, 1.0), (0.5, 1.33, 1.0), (2.0, 1.0, 3.0)):
        point = kto_reference_point(as_t(mismatched), as_t(mismatched_ref))
        ours = kto_loss(as_t(s_w), as_t(ref_w), torch.tensor(desirable), point, beta, lam_d, lam_u)
        assert _max_error(ours, _kto(s_w, ref_w, desirable, mismatched, mismatched_ref, beta, lam_d, lam_u)) < TOLERANCE
    # The same batch with the mismatched log-ratios shifted up: z_0 > 0 now, so the clamp is not all that is tested
    shifted = [m + 40 for m in mismatched]
    point = kto_reference_point(as_t(shifted), as_t(mismatched_ref))
    assert point.item() > 0
    ours = kto_loss(as_t(s_w), as_t(ref_w), torch.tensor(desirable), point, 0.1, 1.0, 1.0)
    assert _max_error(ours, _kto(s_w, ref_w, desirable, shifted, mismatched_ref, 0.1, 1.0, 1.0)) < TOLERANCE


def test_log_odds_is_exact_near_probability_one():
    # P = exp(−1e−12): 1 − P = 1e−12 − 5e−25 + ..., so log odds = −1e−12 − log(1e−12 − 5e−25) to float precision
    m = -1e-12
    assert log_odds(torch.tensor([m], dtype=torch.float64)).item() == pytest.approx(
        m - math.log(1e-12 - 5e-25), abs=TOLERANCE)
    assert math.isinf(log_odds(torch.tensor([0.0], dtype=torch.float64)).item())


def test_gradient_signs():
    """Descent raises the preferred response's log-prob and lowers the other's, for every pairwise loss."""
    z = torch.tensor([-3.0], dtype=torch.float64)
    cases = {
        "simpo": lambda win, lose: simpo_loss(win, lose, 2.0, 1.0),
        "orpo": lambda win, lose: orpo_loss(win, lose, 0.1),
        "odds_ratio": odds_ratio_loss,
        "bco": lambda win, lose: bco_loss(win, lose, z, z, 0.1, 0.2),
        "dpop": lambda win, lose: dpo_positive_loss(win, lose, z, z, 0.1, 50.0),
        "kto_pair": lambda win, lose: kto_pair_loss(win, lose, z, z, 0.1),
    }
    for name, loss in cases.items():
        chosen, rejected = _t(-2.5), _t(-2.0)
        loss(chosen, rejected).sum().backward()
        assert chosen.grad.item() < 0 < rejected.grad.item(), name
    # DPOP: below the reference the penalty pulls the chosen response up harder than DPO does
    chosen_dpop, chosen_dpo = _t(-4.0), _t(-4.0)
    dpo_positive_loss(chosen_dpop, _t(-5.0), z, z, 0.1, 50.0).backward()
    dpo_loss(chosen_dpo, _t(-5.0), z, z, 0.1).backward()
    assert chosen_dpop.grad.item() < chosen_dpo.grad.item() < 0
    # KTO: a desirable response is pushed up, an undesirable one down; z_0 passes no gradient back
    policy, mismatched = _t(-2.0, -2.0), _t(-1.0, -1.5)
    point = kto_reference_point(mismatched, torch.tensor([-2.0, -2.0], dtype=torch.float64))
    reference = torch.full((2,), -2.0, dtype=torch.float64)
    kto_loss(policy, reference, torch.tensor([True, False]), point, 0.1).sum().backward()
    assert policy.grad[0].item() < 0 < policy.grad[1].item()
    assert mismatched.grad is None
