"""DPO family on (chosen, rejected): sigmoid DPO, IPO and hinge, each a thin term over ``functional``."""

from __future__ import annotations

from vlmalign.objectives.base import LogProbs, ObjectiveOutput, ObjectiveTerm
from vlmalign.objectives.functional import dpo_loss, hinge_loss, ipo_loss
from vlmalign.objectives.rewards import preference_metrics


class DPOTerm(ObjectiveTerm):
    """Sigmoid DPO (Rafailov et al. 2023, Eq. 7); ``label_smoothing`` > 0 is the robust/cDPO variant."""

    views = ("chosen", "rejected")
    needs_reference = True

    def __init__(self, weight: float = 1.0, beta: float = 0.1, label_smoothing: float = 0.0) -> None:
        super().__init__(weight)
        self.beta, self.label_smoothing = float(beta), float(label_smoothing)

    def __call__(self, logps: LogProbs, ref: LogProbs | None) -> ObjectiveOutput:
        c, r, rc, rr = logps["chosen"].sum, logps["rejected"].sum, ref["chosen"].sum, ref["rejected"].sum
        loss = dpo_loss(c, r, rc, rr, self.beta, self.label_smoothing).mean()
        return ObjectiveOutput(loss, preference_metrics(logps, ref, self.beta, "chosen", "rejected"))


class IPOTerm(DPOTerm):
    """IPO (Azar et al. 2023) on length-normalised log-ratios, as TRL's loss_type="ipo"."""

    def __init__(self, weight: float = 1.0, beta: float = 0.1) -> None:
        super().__init__(weight, beta)

    def __call__(self, logps: LogProbs, ref: LogProbs | None) -> ObjectiveOutput:
        c, r, rc, rr = logps["chosen"].mean, logps["rejected"].mean, ref["chosen"].mean, ref["rejected"].mean
        loss = ipo_loss(c, r, rc, rr, self.beta).mean()
        return ObjectiveOutput(loss, preference_metrics(logps, ref, self.beta, "chosen", "rejected"))


class HingeTerm(DPOTerm):
    """Hinge loss on the DPO margin (SLiC-HF, Zhao et al. 2023)."""

    def __init__(self, weight: float = 1.0, beta: float = 0.1) -> None:
        super().__init__(weight, beta)

    def __call__(self, logps: LogProbs, ref: LogProbs | None) -> ObjectiveOutput:
        c, r, rc, rr = logps["chosen"].sum, logps["rejected"].sum, ref["chosen"].sum, ref["rejected"].sum
        loss = hinge_loss(c, r, rc, rr, self.beta).mean()
        return ObjectiveOutput(loss, preference_metrics(logps, ref, self.beta, "chosen", "rejected"))
