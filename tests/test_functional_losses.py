"""Objective maths against hand-computed values (no model)."""

import math

import pytest
import torch

from vlmalign.objectives.functional import anchor_loss, conditional_loss, dpo_loss, hinge_loss, ipo_loss, sft_loss

LN2 = math.log(2.0)


def _t(*values):
    return torch.tensor(values, dtype=torch.float64, requires_grad=True)


def test_policy_equal_to_reference_gives_ln2():
    p = _t(-3.0, -7.0)
    assert dpo_loss(p, _t(-5.0, -1.0), p.detach(), torch.tensor([-5.0, -1.0], dtype=torch.float64), 0.1).tolist() == \
        pytest.approx([LN2, LN2])
    assert conditional_loss(p, _t(-4.0, -2.0), p.detach(), torch.tensor([-4.0, -2.0], dtype=torch.float64),
                            0.5).tolist() == pytest.approx([LN2, LN2])
    assert anchor_loss(p, p.detach(), 0.1).tolist() == pytest.approx([LN2, LN2])


def test_dpo_hand_value_beta_scaling_and_gradient_signs():
    chosen, rejected = _t(-2.0), _t(-6.0)
    ref_c, ref_r = torch.tensor([-3.0], dtype=torch.float64), torch.tensor([-4.0], dtype=torch.float64)
    # Δ = (−2 + 3) − (−6 + 4) = 3
    loss = dpo_loss(chosen, rejected, ref_c, ref_r, beta=0.5)
    assert loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-1.5))))
    assert dpo_loss(chosen, rejected, ref_c, ref_r, beta=1.0).item() == pytest.approx(math.log1p(math.exp(-3)))
    loss.sum().backward()
    assert chosen.grad.item() < 0 < rejected.grad.item()  # descent raises chosen, lowers rejected


def test_label_smoothing_mixes_both_directions():
    c, r, z = _t(0.0), _t(0.0), torch.zeros(1, dtype=torch.float64)
    c2 = _t(1.0)
    smoothed = dpo_loss(c2, r, z, z, beta=1.0, label_smoothing=0.25).item()
    expected = 0.75 * math.log1p(math.exp(-1)) + 0.25 * math.log1p(math.exp(1))
    assert smoothed == pytest.approx(expected)
    assert dpo_loss(c, r, z, z, 1.0, 0.25).item() == pytest.approx(LN2)


def test_ipo_and_hinge_hand_values():
    z = torch.zeros(1, dtype=torch.float64)
    # Δ = 2, β = 0.5: IPO (2 − 1)² = 1; hinge max(0, 1 − 1) = 0
    assert ipo_loss(_t(2.0), _t(0.0), z, z, beta=0.5).item() == pytest.approx(1.0)
    assert hinge_loss(_t(2.0), _t(0.0), z, z, beta=0.5).item() == pytest.approx(0.0)
    assert hinge_loss(_t(0.0), _t(2.0), z, z, beta=0.5).item() == pytest.approx(2.0)
    assert ipo_loss(_t(0.0), _t(0.0), z, z, beta=0.1).item() == pytest.approx(25.0)


def test_conditional_and_anchor_directions():
    chosen, corrupted = _t(-2.0), _t(-2.0)
    z = torch.tensor([-2.0], dtype=torch.float64)
    conditional_loss(chosen, corrupted, z, z, beta=0.1).backward()
    assert chosen.grad.item() < 0 < corrupted.grad.item()  # prefer the real image
    anchored = _t(-2.0)
    loss = anchor_loss(anchored, z, beta=0.1, delta=1.0)
    assert loss.item() == pytest.approx(math.log1p(math.exp(1.0)))
    loss.backward()
    assert anchored.grad.item() < 0  # pushes the chosen reward up


def test_sft_loss_token_mean():
    assert sft_loss(torch.tensor([-3.0, -1.0]), torch.tensor([2, 2])).item() == pytest.approx(1.0)


def test_sft_loss_sequence_mean_weighs_each_example_once():
    # a caption, a one-word answer, an empty row
    sums, counts = torch.tensor([-6.0, -1.0, 0.0]), torch.tensor([3, 1, 0])
    assert sft_loss(sums, counts).item() == pytest.approx(7 / 4)
    assert sft_loss(sums, counts, "sequence").item() == pytest.approx((2 + 1) / 2)
    assert sft_loss(torch.zeros(2), torch.zeros(2, dtype=torch.long), "sequence").item() == 0.0
    with pytest.raises(ValueError, match="reduction"):
        sft_loss(sums, counts, "sum")
