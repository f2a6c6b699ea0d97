"""The objective-term interface (docs/design.md, rule 1) and the weighted composite (rule 2).

A term is a pure function of response log-probs: it declares which *views* (chosen, rejected,
chosen_corrupted, negatives, ...) it needs and whether it needs a reference policy, and never touches
the model, optimizer or distributed code. The module computes each requested view once per step.

What a term can ask of the reference:

- ``needs_reference``: the reference's summed log-probs s_ref of every view, passed as ``ref``
  (DPO, mDPO). Any reference strategy serves it, the precomputed cache included.
- ``token_kl_views``: the summed per-token KL(π ‖ π_ref) over the response tokens of these views,
  passed in ``logps[view].kl`` (nSFT's KL ablation, arXiv 2411.14797). That needs the reference's
  full next-token distributions, so only a strategy that runs a reference model serves it (frozen,
  lora_disabled); the others refuse with a ConfigError when the module is built.

What a term can ask of the policy's forward besides log-probs:

- ``needs_router_logits``: the router logits of an MoE policy's forward (``vlmalign.logps.RouterLogits``), passed
  as ``router`` (Branch-Train-MiX's load-balancing term, arXiv 2403.07816). A dense model is refused when the
  module is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from vlmalign.errors import ConfigError
from vlmalign.logps import ResponseLogProbs, RouterLogits

LogProbs = Mapping[str, ResponseLogProbs]


@dataclass
class ObjectiveOutput:
    loss: Tensor
    metrics: dict[str, Tensor] = field(default_factory=dict)


class ObjectiveTerm:
    """Base class: hyper-parameters in ``__init__``, maths in ``__call__``."""

    views: ClassVar[tuple[str, ...]] = ("chosen",)
    needs_reference: ClassVar[bool] = False
    token_kl_views: ClassVar[tuple[str, ...]] = ()
    needs_router_logits: ClassVar[bool] = False
    # Terms of the online-RL and reward-model runs, which train other LightningModules (vlmalign/rl/): ``online``
    # learns from the policy's own samples (PolicyGradientTerm); ``reads_rewards`` scores a reward head's outputs,
    # not log-probs (BradleyTerryTerm).
    online: ClassVar[bool] = False
    reads_rewards: ClassVar[bool] = False

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = float(weight)

    def __call__(self, logps: LogProbs, ref: LogProbs | None) -> ObjectiveOutput:  # pragma: no cover
        raise NotImplementedError


class Objective:
    """Weighted sum of named terms: L = Σ_k w_k L_k. Zero-weight terms are dropped, views and all."""

    def __init__(self, terms: Mapping[str, ObjectiveTerm]) -> None:
        if not terms:
            raise ConfigError("objective.terms is empty: name at least one term (e.g. objective=sft)")
        for name, term in terms.items():
            if not isinstance(term, ObjectiveTerm):
                raise ConfigError(f"objective.terms.{name} is a {type(term).__name__}, not an ObjectiveTerm")
        self.terms = {name: term for name, term in terms.items() if term.weight != 0.0}
        if not self.terms:
            raise ConfigError("every term in objective.terms has weight 0: nothing to optimise")

    def _union(self, attribute: str) -> tuple[str, ...]:
        """The terms' ``attribute`` tuples merged, first appearance first, without repeats."""
        return tuple(dict.fromkeys(v for term in self.terms.values() for v in getattr(term, attribute)))

    @property
    def views(self) -> tuple[str, ...]:
        return self._union("views")

    @property
    def needs_reference(self) -> bool:
        return any(term.needs_reference for term in self.terms.values())

    @property
    def token_kl_views(self) -> tuple[str, ...]:
        """Views whose per-token KL to the reference some term needs (a subset of ``views``)."""
        return self._union("token_kl_views")

    @property
    def needs_router_logits(self) -> bool:
        return any(term.needs_router_logits for term in self.terms.values())

    def only_term(self, kind: type, run: str):
        """The objective's one term, which must be a ``kind``: a run whose module trains exactly one kind of term
        (``run`` names it, e.g. "a reward-model run (objective=reward_model)"); a ConfigError naming the terms given
        otherwise."""
        terms = list(self.terms.values())
        if len(terms) != 1 or not isinstance(terms[0], kind):
            raise ConfigError(f"{run} takes exactly one {kind.__name__}, got terms "
                              f"{ {name: type(term).__name__ for name, term in self.terms.items()} }")
        return terms[0]

    @property
    def online(self) -> bool:
        """Trained on the policy's own samples (vlmalign.rl.online_module), not on a dataset's responses."""
        return any(term.online for term in self.terms.values())

    @property
    def reads_rewards(self) -> bool:
        """Trains a reward model (vlmalign.rl.reward_module)."""
        return any(term.reads_rewards for term in self.terms.values())

    def __call__(self, logps: LogProbs, ref: LogProbs | None = None,
                 router: RouterLogits | None = None) -> ObjectiveOutput:
        if self.needs_reference and ref is None:
            raise ConfigError(
                f"objective terms {[n for n, t in self.terms.items() if t.needs_reference]} need a reference "
                "policy but reference=none; choose reference=frozen, lora_disabled or precomputed"
            )
        total = torch.zeros((), device=next(iter(logps.values())).sum.device)
        metrics: dict[str, Tensor] = {}
        for name, term in self.terms.items():
            out = term(logps, ref, router) if term.needs_router_logits else term(logps, ref)
            total = total + term.weight * out.loss
            metrics[f"loss/{name}"] = out.loss.detach()
            for key, value in out.metrics.items():
                metrics.setdefault(key, value.detach())
        return ObjectiveOutput(total, metrics)
