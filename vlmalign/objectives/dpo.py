"""DPO family on (chosen, rejected): sigmoid DPO, IPO and hinge, each a thin term over ``functional``."""

from __future__ import annotations

from torch import Tensor

from vlmalign.objectives.base import LogProbs, ObjectiveOutput, ObjectiveTerm
from vlmalign.objectives.functional import dpo_loss, hinge_loss, ipo_loss
from vlmalign.objectives.rewards import preference_metrics


class DPOTerm(ObjectiveTerm):
    """Sigmoid DPO (Rafailov et al. 2023, Eq. 7); ``label_smoothing`` > 0 is the robust/cDPO variant.

    The variants below change only ``pair_loss`` and which statistic of the response log-probs it reads
    (``statistic``: the summed ``sum`` or the length-normalised ``mean``).
    """

    views = ("chosen", "rejected")
    needs_reference = True
    statistic = "sum"

    def __init__(self, weight: float = 1.0, beta: float = 0.1, label_smoothing: float = 0.0) -> None:
        super().__init__(weight)
        self.beta, self.label_smoothing = float(beta), float(label_smoothing)

    def pair_loss(self, chosen: Tensor, rejected: Tensor, ref_chosen: Tensor, ref_rejected: Tensor) -> Tensor:
        return dpo_loss(chosen, rejected, ref_chosen, ref_rejected, self.beta, self.label_smoothing)

    def __call__(self, logps: LogProbs, ref: LogProbs | None) -> ObjectiveOutput:
        stat = self.statistic
        loss = self.pair_loss(*(getattr(side[view], stat) for side in (logps, ref) for view in self.views)).mean()
        return ObjectiveOutput(loss, preference_metrics(logps, ref, self.beta, "chosen", "rejected"))


class IPOTerm(DPOTerm):
    """IPO (Azar et al. 2023) on length-normalised log-ratios, as TRL's loss_type="ipo"."""

    statistic = "mean"

    def __init__(self, weight: float = 1.0, beta: float = 0.1) -> None:
        super().__init__(weight, beta)

    def pair_loss(self, chosen: Tensor, rejected: Tensor, ref_chosen: Tensor, ref_rejected: Tensor) -> Tensor:
        return ipo_loss(chosen, rejected, ref_chosen, ref_rejected, self.beta)


class HingeTerm(DPOTerm):
    """Hinge loss on the DPO margin (SLiC-HF, Zhao et al. 2023)."""

    def __init__(self, weight: float = 1.0, beta: float = 0.1) -> None:
        super().__init__(weight, beta)

    def pair_loss(self, chosen: Tensor, rejected: Tensor, ref_chosen: Tensor, ref_rejected: Tensor) -> Tensor:
        return hinge_loss(chosen, rejected, ref_chosen, ref_rejected, self.beta)
