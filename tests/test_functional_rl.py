"""Online-RL maths (vlmalign/objectives/functional_rl.py) against hand-computed values (no model)."""

import math
import statistics

import pytest
import torch

from vlmalign.objectives.functional_rl import (
    bradley_terry_loss,
    clipped_value_loss,
    contrastive_rewards,
    discounted_returns,
    gae,
    grpo_advantages,
    kl_estimate,
    kl_in_reward,
    last_token_rewards,
    masked_mean,
    masked_var,
    masked_whiten,
    ppo_clipped_surrogate,
    reinforce_pp_advantages,
    rloo_advantages,
)


def _t(*rows, grad=False):
    return torch.tensor(rows if len(rows) > 1 or isinstance(rows[0], list) else rows[0], dtype=torch.float64,
                        requires_grad=grad)


VALUES = _t([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
MASK = _t([1, 1, 0], [1, 0, 0])  # the masked-in entries are 1, 2, 4


def test_masked_mean_and_variance_count_only_masked_entries():
    assert masked_mean(VALUES, MASK).item() == pytest.approx(7 / 3)
    assert masked_mean(VALUES, MASK, dim=1).tolist() == pytest.approx([1.5, 4.0])
    # deviations from 7/3: −4/3, −1/3, 5/3; squares sum to 42/9 = 14/3
    assert masked_var(VALUES, MASK).item() == pytest.approx(14 / 3 / 2)
    assert masked_var(VALUES, MASK, unbiased=False).item() == pytest.approx(14 / 9)
    assert masked_mean(VALUES, torch.zeros_like(MASK)).item() == 0.0  # nothing masked in: 0, not NaN


def test_whitening_centres_and_scales_the_masked_entries_and_zeroes_padding():
    std = math.sqrt(7 / 3)
    expected = [[(1 - 7 / 3) / std, (2 - 7 / 3) / std, 0.0], [(4 - 7 / 3) / std, 0.0, 0.0]]
    assert masked_whiten(VALUES, MASK, eps=0.0).tolist() == [pytest.approx(row) for row in expected]
    kept = masked_whiten(VALUES, MASK, shift_mean=False, eps=0.0)
    assert kept[0, 0].item() == pytest.approx((1 - 7 / 3) / std + 7 / 3) and kept[1, 1].item() == 0.0


def test_last_token_rewards_and_discounted_returns():
    mask = _t([1, 1, 0], [1, 1, 1], [0, 0, 0])
    placed = last_token_rewards(_t(3.0, 4.0, 5.0), mask)
    assert placed.tolist() == [[0, 3, 0], [0, 0, 4], [0, 0, 0]]  # an empty response earns nothing
    # γ = 0.5: G_2 = 3, G_1 = 2 + 0.5·3 = 3.5, G_0 = 1 + 0.5·3.5 = 2.75; padding stays 0
    returns = discounted_returns(_t([1.0, 2.0, 3.0], [1.0, 7.0, 7.0]), _t([1, 1, 1], [1, 0, 0]), gamma=0.5)
    assert returns.tolist() == [[2.75, 3.5, 3.0], [1.0, 0.0, 0.0]]


def test_kl_in_reward_puts_the_score_on_the_last_token_and_the_penalty_on_every_token():
    rewards = kl_in_reward(_t(1.0, -1.0), _t([0.1, 0.2, 0.3], [0.4, 0.5, 9.0]), _t([1, 1, 1], [1, 1, 0]), 0.5)
    assert rewards.tolist() == [pytest.approx([-0.05, -0.1, 0.85]), pytest.approx([-0.2, -1.25, 0.0])]


def test_gae_hand_values_with_a_padded_row():
    rewards = _t([0.0, 0.0, 1.0], [1.0, 2.0, 5.0])
    values = _t([0.5, 0.4, 0.3], [1.0, 1.0, 7.0])
    mask = _t([1, 1, 1], [1, 1, 0])
    advantages, returns = gae(rewards, values, mask, gamma=0.9, lam=0.8)
    # row 0: δ = (0 + .9·.4 − .5, 0 + .9·.3 − .4, 1 − .3) = (−.14, −.13, .7); Â_t = δ_t + .72 Â_{t+1}
    # row 1 ends at t = 1 (its padded reward 5 and value 7 count for nothing): δ = (1 + .9 − 1, 2 − 1) = (.9, 1)
    assert advantages.tolist() == [pytest.approx([0.12928, 0.374, 0.7]), pytest.approx([1.62, 1.0, 0.0])]
    assert returns.tolist() == [pytest.approx([0.62928, 0.774, 1.0]), pytest.approx([2.62, 2.0, 0.0])]


def test_gae_at_lambda_one_is_the_monte_carlo_return_minus_the_value():
    rewards, values, mask = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64), \
        _t([1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0])
    advantages, returns = gae(rewards, values, mask, gamma=0.95, lam=1.0)
    assert torch.allclose(returns, discounted_returns(rewards, mask, 0.95))
    assert torch.allclose(advantages, (discounted_returns(rewards, mask, 0.95) - values) * mask)
    one_step, _ = gae(rewards, values, mask, gamma=0.95, lam=0.0)  # λ = 0: the one-step TD error δ_t
    assert one_step[0, 0].item() == pytest.approx((rewards[0, 0] + 0.95 * values[0, 1] - values[0, 0]).item())


def test_ppo_clipped_surrogate_hand_values_and_gradients():
    ratios = [1.5, 0.5, 1.0, 1.1, 1.5, 0.5]
    advantages = _t(1.0, 1.0, -1.0, -2.0, -1.0, -1.0)
    old = _t(-1.0, -2.0, -0.5, -3.0, -1.0, -2.0)
    logps = (old + torch.log(_t(*ratios))).detach().requires_grad_(True)
    loss, clipped = ppo_clipped_surrogate(logps, old, advantages, clip_eps=0.2)
    # −min(ρA, clip(ρ, .8, 1.2)A): 1.5·1 → 1.2 (clipped); .5·1 → .5; −1; −2.2; −1.5 (ρ > 1.2 but A < 0: not
    # clipped, the pessimistic bound); .5·(−1) → −.8 (clipped)
    assert loss.tolist() == pytest.approx([-1.2, -0.5, 1.0, 2.2, 1.5, 0.8])
    assert clipped.tolist() == [1, 0, 0, 0, 0, 1]
    loss.sum().backward()
    # ∂L/∂log π = −ρA where unclipped, 0 where the clip bites
    assert logps.grad.tolist() == pytest.approx([0.0, -0.5, 1.0, 2.2, 1.5, 0.0])


def test_clipped_value_loss_hand_values():
    values = _t(1.0, 2.0, 0.6, grad=True)
    loss = clipped_value_loss(values, _t(0.5, 0.5, 0.5), _t(0.0, 3.0, 1.0), clip_range=0.2)
    # row 0: (1 − 0)² = 1 vs (0.7 − 0)² = .49 → ½·1; row 1: (2 − 3)² = 1 vs (0.7 − 3)² = 5.29 → ½·5.29;
    # row 2: inside the clip range, both terms (0.6 − 1)² = .16 → ½·.16
    assert loss.tolist() == pytest.approx([0.5, 2.645, 0.08])
    loss.sum().backward()
    assert values.grad.tolist() == pytest.approx([1.0, 0.0, -0.4])  # row 1: the clipped term is constant in V


def test_kl_estimators_hand_values():
    logps, ref = torch.log(_t(0.5)), torch.log(_t(0.25))  # log r = log(0.25/0.5) = −ln 2
    assert kl_estimate(logps, ref, "k1").item() == pytest.approx(math.log(2))
    assert kl_estimate(logps, ref, "k2").item() == pytest.approx(0.5 * math.log(2) ** 2)
    assert kl_estimate(logps, ref, "k3").item() == pytest.approx(0.5 - 1 + math.log(2))
    for kind in ("k1", "k2", "k3"):
        assert kl_estimate(ref, ref, kind).item() == 0.0
    with pytest.raises(ValueError, match="k4"):
        kl_estimate(logps, ref, "k4")


def test_k1_and_k3_are_unbiased_for_the_exact_kl():
    p, q = _t(0.5, 0.3, 0.2), _t(0.2, 0.3, 0.5)
    exact = (p * (p / q).log()).sum().item()
    for kind in ("k1", "k3"):  # the expectation under π, summed exactly over the three tokens
        assert (p * kl_estimate(p.log(), q.log(), kind)).sum().item() == pytest.approx(exact)
    assert (p * kl_estimate(p.log(), q.log(), "k3")).min() >= 0 > kl_estimate(p.log(), q.log(), "k1").min()


def test_rloo_hand_values():
    advantages = rloo_advantages(_t(1.0, 2.0, 6.0, 0.0, 0.0, 3.0), group_size=3)
    # r_i − mean of the others: 1 − 4, 2 − 3.5, 6 − 1.5 | 0 − 1.5, 0 − 1.5, 3 − 0
    assert advantages.tolist() == pytest.approx([-3.0, -1.5, 4.5, -1.5, -1.5, 3.0])


def test_grpo_hand_values():
    advantages = grpo_advantages(_t(1.0, 2.0, 6.0, 0.0, 0.0, 3.0), group_size=3)
    # group 1: mean 3, deviations (−2, −1, 3), unbiased var 14/2 = 7; group 2: mean 1, (−1, −1, 2), var 6/2 = 3
    s7, s3 = math.sqrt(7) + 1e-4, math.sqrt(3) + 1e-4
    assert advantages.tolist() == pytest.approx([-2 / s7, -1 / s7, 3 / s7, -1 / s3, -1 / s3, 2 / s3])
    assert grpo_advantages(_t(1.0, 2.0, 6.0, 0.0, 0.0, 3.0), 3, scale=False).tolist() == \
        pytest.approx([-2.0, -1.0, 3.0, -1.0, -1.0, 2.0])
    assert grpo_advantages(_t(2.0, 2.0), 2).tolist() == [0.0, 0.0]  # all equal: no signal, not NaN


@pytest.mark.parametrize("estimator", [rloo_advantages, grpo_advantages])
def test_group_estimators_refuse_a_group_size_that_does_not_divide_the_batch(estimator):
    with pytest.raises(ValueError, match="groups of 4"):
        estimator(torch.zeros(6), 4)
    with pytest.raises(ValueError, match="groups of 1"):
        estimator(torch.zeros(6), 1)


def test_reinforce_pp_hand_values():
    scores, kl = _t(1.0, -1.0), _t([0.1, 0.2, 0.3], [0.4, 0.5, 9.0])
    mask = _t([1, 1, 1], [1, 1, 0])
    advantages = reinforce_pp_advantages(scores, kl, mask, kl_coef=0.5)
    # token rewards (−.05, −.1, .85) and (−.2, −1.25): returns-to-go (.7, .75, .85) and (−1.45, −1.25),
    # whitened over all five response tokens of the batch
    returns = [0.7, 0.75, 0.85, -1.45, -1.25]
    mean, std = statistics.mean(returns), statistics.stdev(returns)
    expected = [(r - mean) / std for r in returns]
    assert advantages[0].tolist() == pytest.approx(expected[:3], rel=1e-6)
    assert advantages[1, :2].tolist() == pytest.approx(expected[3:], rel=1e-6)
    assert advantages[1, 2].item() == 0.0


def test_contrastive_reward_is_the_reward_minus_the_per_prompt_mean_of_k_samples():
    baseline = _t([0.0, 1.0, 2.0], [-1.0, -1.0, 2.0])  # per-prompt means 1 and 0
    assert contrastive_rewards(_t(2.0, 0.5), baseline).tolist() == [1.0, 0.5]
    # k = 1: the one sample's reward is the baseline
    assert contrastive_rewards(torch.tensor([2.0]), torch.tensor([[5.0]])).tolist() == [-3.0]
    with pytest.raises(ValueError, match="k >= 1"):
        contrastive_rewards(_t(2.0, 0.5), torch.zeros(2, 0))


def test_bradley_terry_loss_hand_values_and_margin():
    chosen, rejected = _t(2.0, grad=True), _t(0.0, grad=True)
    assert bradley_terry_loss(chosen, rejected).item() == pytest.approx(math.log1p(math.exp(-2)))
    assert bradley_terry_loss(chosen, rejected, margin=1.0).item() == pytest.approx(math.log1p(math.exp(-1)))
    assert bradley_terry_loss(_t(0.0), _t(0.0)).item() == pytest.approx(math.log(2))
    bradley_terry_loss(chosen, rejected).backward()
    assert chosen.grad.item() < 0 < rejected.grad.item()  # descent widens the gap
