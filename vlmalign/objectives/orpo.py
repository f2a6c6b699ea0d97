"""ORPO (Hong et al. 2024, arXiv 2403.07691): SFT on the chosen response plus an odds-ratio penalty, no reference."""

from __future__ import annotations

from vlmalign.errors import ConfigError
from vlmalign.objectives.base import LogProbs, ObjectiveOutput, ObjectiveTerm
from vlmalign.objectives.functional_reference_free import log_odds, odds_ratio_loss, orpo_loss


class ORPOTerm(ObjectiveTerm):
    """L_SFT + λ L_OR (Eq. 6) on token-mean log-probs; ``lambda_`` is the paper's λ (TRL's ORPO ``beta``)."""

    views = ("chosen", "rejected")
    needs_reference = False

    def __init__(self, weight: float = 1.0, lambda_: float = 0.1) -> None:
        super().__init__(weight)
        if lambda_ < 0:
            raise ConfigError(f"objective ORPO term: lambda_={lambda_} must be >= 0")
        self.lambda_ = float(lambda_)

    def __call__(self, logps: LogProbs, ref: LogProbs | None) -> ObjectiveOutput:
        chosen, rejected = logps["chosen"].mean, logps["rejected"].mean
        loss = orpo_loss(chosen, rejected, self.lambda_).mean()
        ratio = (log_odds(chosen) - log_odds(rejected)).detach()
        metrics = {"nll": -chosen.detach().mean(),
                   "orpo/odds_ratio_loss": odds_ratio_loss(chosen, rejected).detach().mean(),
                   "orpo/log_odds_ratio": ratio.mean(), "rewards/accuracies": (ratio > 0).float().mean(),
                   "logps/chosen": logps["chosen"].sum.detach().mean(),
                   "logps/rejected": logps["rejected"].sum.detach().mean()}
        return ObjectiveOutput(loss, metrics)
