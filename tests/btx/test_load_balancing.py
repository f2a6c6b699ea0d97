"""The load-balancing loss α·N·Σ u_i p_i (Branch-Train-MiX, arXiv 2403.07816, §2.3) and the router metrics against
hand computations and transformers' own function, without a model."""

from __future__ import annotations

import math

import pytest
import torch
from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

from vlmalign.errors import ConfigError
from vlmalign.logps import RouterLogits
from vlmalign.objectives import LoadBalancingTerm, Objective, SFTTerm
from vlmalign.objectives.functional_moe import (
    dropped_fraction,
    load_balancing_loss,
    router_entropy,
    router_load_and_probability,
)


def test_the_loss_on_a_hand_computed_example():
    # 3 tokens, 2 experts, top-1. Router probabilities softmax([l, 0]):
    logits = torch.tensor([[math.log(3.0), 0.0], [0.0, math.log(3.0)], [math.log(3.0), 0.0]])
    # token 1: (3/4, 1/4) -> expert 0; token 2: (1/4, 3/4) -> expert 1; token 3: (3/4, 1/4) -> expert 0
    mask = torch.ones(3, dtype=torch.bool)
    load, prob = router_load_and_probability(logits, mask, top_k=1)
    assert load.tolist() == pytest.approx([2 / 3, 1 / 3])
    assert prob.tolist() == pytest.approx([(3 / 4 + 1 / 4 + 3 / 4) / 3, (1 / 4 + 3 / 4 + 1 / 4) / 3])
    expected = 2 * (2 / 3 * 7 / 12 + 1 / 3 * 5 / 12)  # N Σ u_i p_i
    assert load_balancing_loss([logits], mask, top_k=1).item() == pytest.approx(expected)


def test_padding_counts_in_no_statistic():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [9.0, -9.0]])
    with_pad = load_balancing_loss([logits], torch.tensor([True, True, False]), top_k=1)
    without = load_balancing_loss([logits[:2]], torch.ones(2, dtype=torch.bool), 1)
    assert with_pad.item() == pytest.approx(without.item())


def test_uniform_routing_gives_k_and_the_gradient_flows_through_p_only():
    logits = torch.zeros(10, 4, requires_grad=True)
    loss = load_balancing_loss([logits], torch.ones(10, dtype=torch.bool), top_k=2)
    assert loss.item() == pytest.approx(2.0)  # u_i = k/N, p_i = 1/N: N · N · (k/N)(1/N) = k
    loss.backward()
    assert logits.grad is not None


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_one_layer_equals_transformers_load_balancing_loss_func(top_k):
    generator = torch.Generator().manual_seed(top_k)
    logits = torch.randn(2 * 7, 4, generator=generator)
    mask = torch.rand(2, 7, generator=generator) > 0.3
    ours = load_balancing_loss([logits], mask.reshape(-1), top_k)
    theirs = load_balancing_loss_func((logits,), num_experts=4, top_k=top_k, attention_mask=mask.long())
    assert ours.item() == pytest.approx(float(theirs), rel=1e-6)


def test_several_layers_are_the_mean_of_the_per_layer_losses():
    generator = torch.Generator().manual_seed(0)
    layers = [torch.randn(9, 3, generator=generator) for _ in range(3)]
    mask = torch.ones(9, dtype=torch.bool)
    per_layer = [load_balancing_loss([layer], mask, 2).item() for layer in layers]
    assert load_balancing_loss(layers, mask, 2).item() == pytest.approx(sum(per_layer) / 3)


def test_entropy_and_dropped_share():
    mask = torch.ones(4, dtype=torch.bool)
    assert router_entropy(torch.zeros(4, 8), mask).item() == pytest.approx(math.log(8))
    assert router_entropy(torch.tensor([[50.0, 0.0]] * 4), mask).item() == pytest.approx(0.0, abs=1e-12)
    # top-1 over 2 experts, capacity 1.0 · 1 · T/2 each: 3 of 4 tokens to expert 0 -> one of 4 assignments dropped
    assert dropped_fraction(torch.tensor([0.75, 0.25]), top_k=1, capacity_factor=1.0).item() == pytest.approx(0.25)
    assert dropped_fraction(torch.tensor([0.75, 0.25]), top_k=1, capacity_factor=2.0).item() == 0.0


def test_the_term_in_an_objective_weights_it_by_alpha_and_logs_per_layer_metrics():
    from vlmalign.logps import ResponseLogProbs

    logits = (torch.zeros(6, 4), torch.randn(6, 4))
    router = RouterLogits(logits, torch.ones(6, dtype=torch.bool), top_k=2)
    logps = {"chosen": ResponseLogProbs(torch.tensor([-3.0, -5.0]), torch.tensor([3, 5]))}
    objective = Objective({"sft": SFTTerm(), "load_balancing": LoadBalancingTerm(weight=0.01)})
    assert objective.needs_router_logits and objective.views == ("chosen",)
    out = objective(logps, None, router)
    balance = load_balancing_loss(logits, router.token_mask, 2)
    assert out.loss.item() == pytest.approx(1.0 + 0.01 * balance.item())
    assert out.metrics["loss/load_balancing"].item() == pytest.approx(balance.item())
    for layer in (0, 1):
        assert {f"router/layer{layer}/{name}" for name in ("entropy", "dropped", "load_expert3")} <= set(out.metrics)
    assert sum(out.metrics[f"router/layer1/load_expert{e}"].item() for e in range(4)) == pytest.approx(2.0)


def test_bad_settings_and_a_missing_router_are_config_errors():
    with pytest.raises(ConfigError, match="capacity_factor"):
        LoadBalancingTerm(capacity_factor=0)
    with pytest.raises(ConfigError, match="no router logits"):
        LoadBalancingTerm()({}, None, None)
