"""SimPO (Meng et al. 2024, arXiv 2405.14734): reference-free, length-normalised, with a target margin γ."""

from __future__ import annotations

from vlmalign.errors import ConfigError
from vlmalign.objectives.base import LogProbs, ObjectiveOutput, ObjectiveTerm
from vlmalign.objectives.functional_reference_free import simpo_loss


class SimPOTerm(ObjectiveTerm):
    """−log σ(β m(y_w) − β m(y_l) − γ), m the token-mean log-prob (Eq. 6); no reference policy.

    ``winner``/``loser`` name the two views compared: (chosen, rejected) by default; (chosen,
    chosen_corrupted) makes it mDPO's conditional preference without a reference (the same response, real
    image over the corrupted m'; ``conf/objective/simpo_conditional.yaml``).
    """

    needs_reference = False

    def __init__(self, weight: float = 1.0, beta: float = 2.0, gamma: float = 1.0, winner: str = "chosen",
                 loser: str = "rejected") -> None:
        super().__init__(weight)
        if beta <= 0 or gamma < 0:
            raise ConfigError(f"objective SimPO term: beta={beta} must be > 0 and gamma={gamma} >= 0")
        if winner == loser:
            raise ConfigError(f"objective SimPO term: winner and loser are both {winner!r}; name two views")
        self.beta, self.gamma = float(beta), float(gamma)
        self.views = (winner, loser)  # type: ignore[misc]  # per-instance view choice

    def __call__(self, logps: LogProbs, ref: LogProbs | None) -> ObjectiveOutput:
        winner, loser = (logps[view].mean for view in self.views)
        loss = simpo_loss(winner, loser, self.beta, self.gamma).mean()
        rewards = {view: self.beta * mean.detach() for view, mean in zip(self.views, (winner, loser))}
        suffix = "" if self.views[1] == "rejected" else "_" + self.views[1]
        margin = rewards[self.views[0]] - rewards[self.views[1]]
        metrics = {f"rewards/{view}": reward.mean() for view, reward in rewards.items()}
        metrics[f"rewards/margins{suffix}"] = margin.mean()
        metrics[f"rewards/accuracies{suffix}"] = (margin > 0).float().mean()
        return ObjectiveOutput(loss, metrics)
