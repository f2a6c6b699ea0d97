"""Branch-Train-MiX's merge as state-dict arithmetic (arXiv 2403.07816, §2.2), no model code.

Given the dense state dicts of N experts branched from one seed:

- each expert's feed-forward block becomes one expert of the MoE layer at the same depth. Llama's MLP is
  down(silu(gate(x)) * up(x)) and a Mixtral expert is the same function of ``gate_up_proj[e] = [gate; up]`` (gate
  rows first: the expert splits the product with ``chunk(2)``) and ``down_proj[e]``, so the map is exact;
- every other weight (attention, norms, embeddings, head, vision tower, projector) is the weighted mean
  Σ_i w_i θ_i with Σ_i w_i = 1 (the paper's plain average is w_i = 1/N);
- the router weights come from the caller (``vlmalign/models/router_init.py``).

Branch-Train-Merge (Li et al. 2022, the paper's dense baseline) is ``average_states`` alone; sparse upcycling
(Komatsuzaki et al. 2023) is ``merge_moe_states`` of N copies of the seed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from vlmalign.errors import ConfigError

State = Mapping[str, Tensor]
DENSE_MLP = ("gate_proj", "up_proj", "down_proj")
# Mixtral parameter names (transformers 5.x: experts stored fused, one 3-D tensor per projection and layer).
EXPERTS_GATE_UP = re.compile(r"^(?P<mlp>.*\.layers\.\d+\.mlp)\.experts\.gate_up_proj$")
EXPERTS_DOWN = re.compile(r"^(?P<mlp>.*\.layers\.\d+\.mlp)\.experts\.down_proj$")
ROUTER = re.compile(r"^(?P<mlp>.*\.layers\.\d+\.mlp)\.gate\.weight$")


def normalised_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    """The averaging weights w_i, scaled to sum to 1; None means the plain mean 1/N."""
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ConfigError(f"expert_weights={list(weights)} must be {count} non-negative numbers with a positive sum "
                          "(one per expert, the seed last when it is an expert)")
    total = float(sum(weights))
    return [float(w) / total for w in weights]


def weighted_mean(tensors: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """Σ_i w_i t_i, accumulated in float64 and returned in the tensors' dtype."""
    total = torch.zeros_like(tensors[0], dtype=torch.float64)
    for tensor, weight in zip(tensors, weights):
        total += weight * tensor.double()
    return total.to(tensors[0].dtype)


def average_states(states: Sequence[State], weights: Sequence[float] | None = None) -> dict[str, Tensor]:
    """Every tensor averaged: Branch-Train-Merge's dense model (and the non-FFN part of BTX)."""
    w = normalised_weights(weights, len(states))
    return {name: weighted_mean([s[name] for s in states], w) for name in states[0]}


def merge_moe_states(states: Sequence[State], moe_names: Mapping[str, torch.Size], router: State,
                     weights: Sequence[float] | None = None) -> dict[str, Tensor]:
    """The MoE model's state dict (its names and shapes ``moe_names``) from the dense ``states``, expert i being
    ``states[i]``'s MLP; ``router`` holds every ``...mlp.gate.weight`` (N, hidden)."""
    w = normalised_weights(weights, len(states))
    out: dict[str, Tensor] = {}
    for name, shape in moe_names.items():
        if match := EXPERTS_GATE_UP.match(name):  # (N, 2 * intermediate, hidden)
            mlp = match["mlp"]
            out[name] = torch.stack([torch.cat([s[f"{mlp}.gate_proj.weight"], s[f"{mlp}.up_proj.weight"]])
                                     for s in states])
        elif match := EXPERTS_DOWN.match(name):  # (N, hidden, intermediate)
            out[name] = torch.stack([s[f"{match['mlp']}.down_proj.weight"] for s in states])
        elif ROUTER.match(name):
            if name not in router:
                raise ConfigError(f"no router weights for {name}")
            out[name] = router[name]
        else:
            out[name] = weighted_mean([s[name] for s in states], w)
        if tuple(out[name].shape) != tuple(shape):
            raise ConfigError(f"merged {name} has shape {tuple(out[name].shape)}, the MoE model wants {tuple(shape)}")
    return out


def dense_mlp_names(moe_names: Sequence[str]) -> set[str]:
    """The dense MLP weight names that the MoE model's experts replace (every one must be present in an expert)."""
    mlps = {m["mlp"] for name in moe_names if (m := EXPERTS_GATE_UP.match(name))}
    return {f"{mlp}.{proj}.weight" for mlp in mlps for proj in DENSE_MLP}


def router_names(moe_names: Sequence[str]) -> list[str]:
    """The router weight names of the MoE model, in layer order."""
    found = [name for name in moe_names if ROUTER.match(name)]
    return sorted(found, key=lambda name: int(re.search(r"\.layers\.(\d+)\.", name)[1]))
