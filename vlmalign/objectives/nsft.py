"""nSFT's negative-supervision term (arXiv 2411.14797): SFT on the corrective turns built from y_l.

nSFT's observation is that what multimodal RLHF gains over continual SFT is the negative supervision
in the rejected response. A builder G(y_l; y_w, Q) (``vlmalign.negatives``) turns the errors of y_l
into a multi-turn conversation about the image ("is there a green triangle in the image ?" "no"),
and the model is trained on it with the plain SFT loss, next to SFT on y_w:

    L_nSFT = L_SFT(y_w | m, x) + λ · L_SFT(answers of the corrective turns | m, questions)

One model, no reference (``objective=nsft``). The dialogue is the ``negatives`` view: labels on the
assistant answers only; a sample whose rejected response has no error has no labelled token there
and adds nothing (token-mean over the batch; see ``functional.token_mean``).
"""

from __future__ import annotations

from vlmalign.objectives.base import LogProbs, ObjectiveOutput
from vlmalign.objectives.sft import SFTTerm


class NegativeSFTTerm(SFTTerm):
    """Token-mean NLL of the corrective answers in the ``negatives`` dialogue; λ is ``weight``."""

    def __init__(self, weight: float = 1.0, view: str = "negatives") -> None:
        super().__init__(weight, view)

    def __call__(self, logps: LogProbs, ref: LogProbs | None) -> ObjectiveOutput:
        out = super().__call__(logps, ref)
        turns = logps[self.view]
        has_turns = turns.count > 0
        metrics = {
            f"nll/{self.view}": out.loss.detach(),
            f"logps/{self.view}": (turns.sum.detach().sum() / has_turns.sum().clamp(min=1)),  # over rows with turns
            f"{self.view}/fraction_with_turns": has_turns.float().mean(),
            f"{self.view}/tokens": turns.count.float().mean(),
        }
        return ObjectiveOutput(out.loss, metrics)
