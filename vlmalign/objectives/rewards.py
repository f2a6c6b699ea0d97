"""Implicit-reward metrics shared by the preference terms, with TRL-compatible names.

reward(view) = β (s(y|m) − s_ref(y|m)), the DPO implicit reward (Rafailov et al. 2023, §5).
"""

from __future__ import annotations

from torch import Tensor

from vlmalign.objectives.base import LogProbs


def implicit_rewards(logps: LogProbs, ref: LogProbs, beta: float, views: tuple[str, ...]) -> dict[str, Tensor]:
    return {view: beta * (logps[view].sum - ref[view].sum).detach() for view in views}


def preference_metrics(logps: LogProbs, ref: LogProbs, beta: float, winner: str, loser: str) -> dict[str, Tensor]:
    """rewards/{chosen,rejected,margins,accuracies} and logps/* for one (winner, loser) pair of views."""
    rewards = implicit_rewards(logps, ref, beta, (winner, loser))
    margin = rewards[winner] - rewards[loser]
    return {
        f"rewards/{winner}": rewards[winner].mean(),
        f"rewards/{loser}": rewards[loser].mean(),
        f"rewards/margins{'' if loser == 'rejected' else '_' + loser}": margin.mean(),
        f"rewards/accuracies{'' if loser == 'rejected' else '_' + loser}": (margin > 0).float().mean(),
        f"logps/{winner}": logps[winner].sum.detach().mean(),
        f"logps/{loser}": logps[loser].sum.detach().mean(),
    }
