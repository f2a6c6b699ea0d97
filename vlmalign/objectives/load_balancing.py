"""The MoE fine-tune's load-balancing term and router metrics (Branch-Train-MiX, arXiv 2403.07816, §2.3).

It reads no response log-probs: ``needs_router_logits`` asks the module for the router logits of the step's forward
(``vlmalign.logps.RouterLogits``), and it is listed beside the term that trains the responses (``objective=btx``:
SFT + this, α = 0.01 as the term's weight).
"""

from __future__ import annotations

import torch

from vlmalign.errors import ConfigError
from vlmalign.logps import RouterLogits
from vlmalign.objectives.base import LogProbs, ObjectiveOutput, ObjectiveTerm
from vlmalign.objectives.functional_moe import (
    dropped_fraction,
    load_balancing_loss,
    router_entropy,
    router_load_and_probability,
)


class LoadBalancingTerm(ObjectiveTerm):
    """N Σ_i u_i p_i averaged over MoE layers; logs per layer each expert's load u_i, the router entropy and the
    share of assignments a capacity limit of ``capacity_factor`` would drop."""

    views = ()
    needs_router_logits = True

    def __init__(self, weight: float = 0.01, capacity_factor: float = 1.0, layer_metrics: bool = True) -> None:
        super().__init__(weight)
        if not capacity_factor > 0:
            raise ConfigError(f"objective load-balancing term: capacity_factor={capacity_factor!r} must be > 0")
        self.capacity_factor = float(capacity_factor)
        self.layer_metrics = layer_metrics

    def __call__(self, logps: LogProbs, ref: LogProbs | None, router: RouterLogits | None = None) -> ObjectiveOutput:
        if router is None or not router.layers:
            raise ConfigError("the load-balancing term got no router logits: the model has no MoE layers")
        loss = load_balancing_loss(router.layers, router.token_mask, router.top_k)
        metrics: dict = {}
        if self.layer_metrics:
            with torch.no_grad():
                for index, logits in enumerate(router.layers):
                    load, _ = router_load_and_probability(logits, router.token_mask, router.top_k)
                    prefix = f"router/layer{index}"
                    metrics.update({f"{prefix}/load_expert{e}": u for e, u in enumerate(load)})
                    metrics[f"{prefix}/entropy"] = router_entropy(logits, router.token_mask)
                    metrics[f"{prefix}/dropped"] = dropped_fraction(load, router.top_k, self.capacity_factor)
        return ObjectiveOutput(loss, metrics)
