"""Supervised fine-tuning: token-mean NLL of the response (DESIGN.md, "SFT")."""

from __future__ import annotations

from vlmalign.objectives.base import LogProbs, ObjectiveOutput, ObjectiveTerm
from vlmalign.objectives.functional import sft_loss


class SFTTerm(ObjectiveTerm):
    """NLL of ``view`` given image and prompt, averaged over all response tokens in the batch."""

    needs_reference = False

    def __init__(self, weight: float = 1.0, view: str = "chosen") -> None:
        super().__init__(weight)
        self.view = view
        self.views = (view,)  # type: ignore[misc]  # per-instance view choice

    def __call__(self, logps: LogProbs, ref: LogProbs | None) -> ObjectiveOutput:
        target = logps[self.view]
        loss = sft_loss(target.sum, target.count)
        return ObjectiveOutput(loss, {f"logps/{self.view}": target.sum.mean().detach(), "nll": loss.detach()})
