"""mDPO's anchored preference term ("APO"): keep rewards of chosen responses above an anchor δ."""

from __future__ import annotations

import torch

from vlmalign.errors import ConfigError
from vlmalign.objectives.base import LogProbs, ObjectiveOutput, ObjectiveTerm
from vlmalign.objectives.functional import anchor_loss
from vlmalign.objectives.rewards import implicit_rewards


class AnchorTerm(ObjectiveTerm):
    """−log σ(β(s(y_w|m) − s_ref(y_w|m)) − δ) (Wang et al. 2024, §3), δ = 0 by default.

    ``anchored`` picks which views are anchored (mDPO Table 4): the chosen response only (default);
    for the rejected and corrupted views the anchor is an upper bound, −log σ(δ − reward).
    """

    needs_reference = True
    UPPER_BOUNDED = {"rejected", "chosen_corrupted"}

    def __init__(self, weight: float = 1.0, beta: float = 0.1, delta: float = 0.0,
                 anchored: tuple[str, ...] = ("chosen",)) -> None:
        super().__init__(weight)
        unknown = set(anchored) - {"chosen"} - self.UPPER_BOUNDED
        if unknown or "chosen" not in anchored:
            raise ConfigError(f"anchor.anchored={list(anchored)}: must include 'chosen', may add "
                              f"{sorted(self.UPPER_BOUNDED)}")
        self.beta, self.delta = float(beta), float(delta)
        self.views = tuple(anchored)  # type: ignore[misc]

    def __call__(self, logps: LogProbs, ref: LogProbs | None) -> ObjectiveOutput:
        losses = [anchor_loss(logps["chosen"].sum, ref["chosen"].sum, self.beta, self.delta)]
        for view in self.views[1:]:  # −log σ(δ − βΔ): the same function with both signs flipped
            losses.append(anchor_loss(-logps[view].sum, -ref[view].sum, self.beta, -self.delta))
        loss = torch.stack(losses).sum(0).mean()
        rewards = implicit_rewards(logps, ref, self.beta, ("chosen",))
        return ObjectiveOutput(loss, {"rewards/chosen": rewards["chosen"].mean()})
