"""The MoE fine-tune's load-balancing loss and router statistics (Branch-Train-MiX, arXiv 2403.07816, §2.3;
the loss is Switch Transformer's, Fedus et al. 2021, eqs. 4–6), as plain functions of router logits. Torch only.

Per MoE layer with N experts, over the T real tokens of a batch (padding masked out):

- p_i = (1/T) Σ_t softmax(W x_t)_i, the mean router probability of expert i;
- u_i = (1/T) Σ_t 1[i ∈ top-k(W x_t)], the fraction of tokens routed to expert i (Σ_i u_i = k);
- L_balance = N Σ_i u_i p_i, the paper's α·N·Σ u_i p_i without α (α is the term's weight in the objective).

It is smallest when the routing is uniform (u_i = k/N, p_i = 1/N give k); u_i has no gradient, p_i carries it.
Over layers the loss is the mean of the per-layer values. transformers' ``load_balancing_loss_func`` computes the
same for one layer; for several it pools u and p over all layers' tokens before the product (tested against it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def router_load_and_probability(logits: Tensor, mask: Tensor, top_k: int) -> tuple[Tensor, Tensor]:
    """(u, p), each (N,), of one layer's ``logits`` (T, N) over the tokens where ``mask`` (T,) is true."""
    probs = torch.softmax(logits.float(), dim=-1)  # (T, N)
    chosen = probs.topk(top_k, dim=-1).indices  # (T, k)
    routed = torch.zeros_like(probs).scatter_(1, chosen, 1.0)  # (T, N): 1 where the token goes
    weight = mask.to(probs.dtype)[:, None]
    tokens = weight.sum().clamp(min=1.0)
    return (routed * weight).sum(0) / tokens, (probs * weight).sum(0) / tokens


def load_balancing_loss(layers: Sequence[Tensor], mask: Tensor, top_k: int) -> Tensor:
    """Mean over layers of N Σ_i u_i p_i (see the module docstring)."""
    values = []
    for logits in layers:
        load, probability = router_load_and_probability(logits, mask, top_k)
        values.append(logits.shape[-1] * (load * probability).sum())
    return torch.stack(values).mean()


def router_entropy(logits: Tensor, mask: Tensor) -> Tensor:
    """Mean over real tokens of H(softmax(W x_t)) in nats: log N for a uniform router, 0 for a hard one."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    per_token = -(log_probs.exp() * log_probs).sum(-1)
    weight = mask.to(per_token.dtype)
    return (per_token * weight).sum() / weight.sum().clamp(min=1.0)


def dropped_fraction(load: Tensor, top_k: int, capacity_factor: float) -> Tensor:
    """Share of the T·k token-to-expert assignments that a capacity limit of ``capacity_factor``·k·T/N tokens per
    expert (GShard/Switch) would drop: Σ_i max(0, u_i − c k/N) / k. Mixtral routes without a limit, so nothing is
    dropped in training; this says how far the routing is from fitting a capacity-bound implementation."""
    capacity = capacity_factor * top_k / load.shape[-1]
    return (load - capacity).clamp(min=0).sum() / top_k
