"""KTO (Ethayarajh et al. 2024, arXiv 2402.01306): unpaired desirable/undesirable examples, and its paired form.

Unpaired data has one response per example, labelled desirable or undesirable, so which view a row belongs
to *is* its label: unpaired data (``vlmalign.data.unpaired``) gives every example the three views this term
scores:

- ``desirable``: the response if the example is desirable, else an empty row (no labelled token, count 0);
- ``undesirable``: the same for undesirable examples;
- ``mismatched``: the response of *another* example under this example's prompt and image, for z_0.

The module scores views without knowing labels, so nothing outside this file and the data changes.
"""

from __future__ import annotations

import torch

from vlmalign.errors import ConfigError, DataError
from vlmalign.objectives.base import LogProbs, ObjectiveOutput, ObjectiveTerm
from vlmalign.objectives.dpo import DPOTerm
from vlmalign.objectives.functional_kto import kto_loss, kto_pair_loss, kto_reference_point
from vlmalign.views import UNPAIRED_VIEWS


class KTOTerm(ObjectiveTerm):
    """Mean over examples of λ_D (1 − σ(β(r − z_0))) (desirable) or λ_U (1 − σ(β(z_0 − r))) (undesirable), §4.1.

    ``desirable_weight``/``undesirable_weight`` are λ_D/λ_U; the paper advises λ_D n_D / (λ_U n_U) in [1, 4/3]
    for n_D desirable and n_U undesirable examples (§4.2), so with imbalanced data raise the rarer class's λ.
    """

    views = UNPAIRED_VIEWS
    needs_reference = True

    def __init__(self, weight: float = 1.0, beta: float = 0.1, desirable_weight: float = 1.0,
                 undesirable_weight: float = 1.0) -> None:
        super().__init__(weight)
        if beta <= 0 or desirable_weight <= 0 or undesirable_weight <= 0:
            raise ConfigError(f"objective KTO term: beta={beta}, desirable_weight={desirable_weight} and "
                              f"undesirable_weight={undesirable_weight} must all be > 0")
        self.beta = float(beta)
        self.desirable_weight, self.undesirable_weight = float(desirable_weight), float(undesirable_weight)

    def __call__(self, logps: LogProbs, ref: LogProbs | None) -> ObjectiveOutput:
        desirable = logps["desirable"].count > 0
        undesirable = logps["undesirable"].count > 0
        if bool((desirable == undesirable).any()):
            raise DataError("KTO: every example must have exactly one of the views 'desirable' and 'undesirable' "
                            f"with response tokens; got {int((desirable & undesirable).sum())} with both and "
                            f"{int((~desirable & ~undesirable).sum())} with neither (is this unpaired data?)")
        policy = torch.where(desirable, logps["desirable"].sum, logps["undesirable"].sum)
        reference = torch.where(desirable, ref["desirable"].sum, ref["undesirable"].sum)
        point = kto_reference_point(logps["mismatched"].sum, ref["mismatched"].sum)
        losses = kto_loss(policy, reference, desirable, point, self.beta, self.desirable_weight,
                          self.undesirable_weight)
        rewards = self.beta * (policy - reference).detach()
        metrics = {"kl": point, "kto/desirable_fraction": desirable.float().mean()}
        for name, rows in (("chosen", desirable), ("rejected", undesirable)):
            if bool(rows.any()):  # a batch of one class has no reward for the other (not 0)
                metrics[f"rewards/{name}"] = rewards[rows].mean()
                metrics[f"logps/{name}"] = policy.detach()[rows].mean()
        return ObjectiveOutput(losses.mean(), metrics)


class KTOPairTerm(DPOTerm):
    """KTO on (chosen, rejected) pairs (``kto_pair``): each half's reference point from the other half's rewards."""

    def __init__(self, weight: float = 1.0, beta: float = 0.1) -> None:
        super().__init__(weight, beta)

    def pair_loss(self, chosen, rejected, ref_chosen, ref_rejected):
        return kto_pair_loss(chosen, rejected, ref_chosen, ref_rejected, self.beta)
