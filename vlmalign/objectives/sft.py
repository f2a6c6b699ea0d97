"""Supervised fine-tuning: token-mean NLL of the response (docs/design.md, "Objective maths")."""

from __future__ import annotations

from vlmalign.objectives.base import LogProbs, ObjectiveOutput, ObjectiveTerm
from vlmalign.objectives.functional import sft_loss

SFT_REDUCTIONS = ("token", "sequence")


class SFTTerm(ObjectiveTerm):
    """NLL of ``view`` given image and prompt: the token mean over the batch, or (``reduction="sequence"``)
    the mean of per-example token means, which keeps short answers from being drowned by captions."""

    needs_reference = False

    def __init__(self, weight: float = 1.0, view: str = "chosen", reduction: str = "token") -> None:
        super().__init__(weight)
        if reduction not in SFT_REDUCTIONS:
            raise ValueError(f"objective SFT term: reduction={reduction!r} is not one of {SFT_REDUCTIONS}")
        self.view = view
        self.reduction = reduction
        self.views = (view,)  # type: ignore[misc]  # per-instance view choice

    def __call__(self, logps: LogProbs, ref: LogProbs | None) -> ObjectiveOutput:
        target = logps[self.view]
        loss = sft_loss(target.sum, target.count, self.reduction)
        return ObjectiveOutput(loss, {f"logps/{self.view}": target.sum.mean().detach(), "nll": loss.detach()})
