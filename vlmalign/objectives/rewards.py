"""Implicit-reward metrics shared by the preference terms, with TRL-compatible names.

reward(view) = β (s(y|m) − s_ref(y|m)), the DPO implicit reward (Rafailov et al. 2023, §5).
"""

from __future__ import annotations

from torch import Tensor

from vlmalign.objectives.base import LogProbs


def implicit_rewards(logps: LogProbs, ref: LogProbs, beta: float, views: tuple[str, ...]) -> dict[str, Tensor]:
    return {view: beta * (logps[view].sum - ref[view].sum).detach() for view in views}


def reward_pair_metrics(winner_rewards: Tensor, loser_rewards: Tensor, winner: str = "chosen",
                        loser: str = "rejected") -> dict[str, Tensor]:
    """rewards/{chosen,rejected,margins,accuracies} of per-pair rewards (B,) each: an implicit reward's or a reward
    model's scores (vlmalign/objectives/reward_model.py)."""
    winner_rewards, loser_rewards = winner_rewards.detach(), loser_rewards.detach()
    margin = winner_rewards - loser_rewards
    return {
        f"rewards/{winner}": winner_rewards.mean(),
        f"rewards/{loser}": loser_rewards.mean(),
        f"rewards/margins{'' if loser == 'rejected' else '_' + loser}": margin.mean(),
        f"rewards/accuracies{'' if loser == 'rejected' else '_' + loser}": (margin > 0).float().mean(),
    }


def preference_metrics(logps: LogProbs, ref: LogProbs, beta: float, winner: str, loser: str) -> dict[str, Tensor]:
    """rewards/{chosen,rejected,margins,accuracies} and logps/* for one (winner, loser) pair of views."""
    rewards = implicit_rewards(logps, ref, beta, (winner, loser))
    return {
        **reward_pair_metrics(rewards[winner], rewards[loser], winner, loser),
        f"logps/{winner}": logps[winner].sum.detach().mean(),
        f"logps/{loser}": logps[loser].sum.detach().mean(),
    }
