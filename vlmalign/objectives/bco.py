"""BCO (Jung et al. 2024, arXiv 2404.04656): each response classified on its own, rewards shifted by their mean."""

from __future__ import annotations

import torch

from vlmalign.errors import ConfigError
from vlmalign.objectives.base import LogProbs, ObjectiveOutput, ObjectiveTerm
from vlmalign.objectives.functional import bco_loss
from vlmalign.objectives.rewards import implicit_rewards, preference_metrics


class BCOTerm(ObjectiveTerm):
    """−log σ(r_w − δ) − log σ(δ − r_l) on (chosen, rejected), δ the running mean of every reward seen in training.

    δ is the one piece of state a term keeps: the mean of all chosen and rejected rewards β(s − s_ref) of the
    training batches so far, this batch included (as TRL's ``RunningMoments``). It is updated only when
    gradients are on, so validation reads it without moving it; before any training batch, a batch's own
    mean is used. It is not checkpointed (a resumed run rebuilds it from its first batch on) and, under data
    parallelism, each rank keeps its own.
    """

    views = ("chosen", "rejected")
    needs_reference = True

    def __init__(self, weight: float = 1.0, beta: float = 0.1) -> None:
        super().__init__(weight)
        if beta <= 0:
            raise ConfigError(f"objective BCO term: beta={beta} must be > 0")
        self.beta = float(beta)
        self.reward_sum, self.reward_count = 0.0, 0  # the running mean δ = sum / count

    def reward_shift(self, rewards: torch.Tensor) -> float:
        """δ after seeing ``rewards`` (all chosen and rejected rewards of this batch, detached)."""
        if torch.is_grad_enabled():
            self.reward_sum += float(rewards.sum())
            self.reward_count += rewards.numel()
        if self.reward_count == 0:
            return float(rewards.mean())
        return self.reward_sum / self.reward_count

    def __call__(self, logps: LogProbs, ref: LogProbs | None) -> ObjectiveOutput:
        rewards = implicit_rewards(logps, ref, self.beta, self.views)
        delta = self.reward_shift(torch.cat([rewards["chosen"], rewards["rejected"]]))
        loss = bco_loss(logps["chosen"].sum, logps["rejected"].sum, ref["chosen"].sum, ref["rejected"].sum,
                        self.beta, delta).mean()
        metrics = preference_metrics(logps, ref, self.beta, "chosen", "rejected")
        metrics["bco/delta"] = torch.tensor(delta)
        return ObjectiveOutput(loss, metrics)
