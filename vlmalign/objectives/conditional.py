"""mDPO's conditional preference term ("CPO"): the same chosen response, real image over corrupted m'."""

from __future__ import annotations

from vlmalign.objectives.base import LogProbs, ObjectiveOutput, ObjectiveTerm
from vlmalign.objectives.functional import conditional_loss
from vlmalign.objectives.rewards import preference_metrics


class ConditionalTerm(ObjectiveTerm):
    """−log σ(β[(s(y_w|m) − s_ref(y_w|m)) − (s(y_w|m') − s_ref(y_w|m'))]) (Wang et al. 2024, §3)."""

    views = ("chosen", "chosen_corrupted")
    needs_reference = True

    def __init__(self, weight: float = 1.0, beta: float = 0.1) -> None:
        super().__init__(weight)
        self.beta = float(beta)

    def __call__(self, logps: LogProbs, ref: LogProbs | None) -> ObjectiveOutput:
        loss = conditional_loss(logps["chosen"].sum, logps["chosen_corrupted"].sum, ref["chosen"].sum,
                                ref["chosen_corrupted"].sum, self.beta).mean()
        return ObjectiveOutput(loss, preference_metrics(logps, ref, self.beta, "chosen", "chosen_corrupted"))
