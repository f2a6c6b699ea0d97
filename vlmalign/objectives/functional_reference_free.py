"""Reference-free preference maths: SimPO and ORPO (no π_ref anywhere; see ``functional`` for the conventions).

Both score a response by its *length-normalised* log-probability, the mean over its tokens
m(y) = s(y) / |y| (``ResponseLogProbs.mean``), so a long response is not preferred for being long.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def simpo_loss(policy_chosen_mean_logps: Tensor, policy_rejected_mean_logps: Tensor, beta: float,
               gamma: float) -> Tensor:
    """SimPO (Meng et al. 2024, arXiv 2405.14734, Eq. 6): −log σ(β m(y_w) − β m(y_l) − γ).

    The implicit reward is β m(y), the average log-likelihood the model generates with, instead of DPO's
    reference log-ratio; the target margin γ > 0 asks the winner to beat the loser by γ, not just to win.
    """
    return -F.logsigmoid(beta * (policy_chosen_mean_logps - policy_rejected_mean_logps) - gamma)


def log_odds(mean_logps: Tensor) -> Tensor:
    """log odds(y) = log P/(1 − P) with P = exp(m(y)) (ORPO, Hong et al. 2024, arXiv 2403.07691, Eq. 4).

    log(1 − P) is computed as log(−expm1(m)), exact for P near 1 where log1p(−exp(m)) loses digits; P = 1
    (m = 0) gives +inf odds, which no response of a model with a softmax head reaches.
    """
    return mean_logps - torch.log(-torch.expm1(mean_logps))


def odds_ratio_loss(policy_chosen_mean_logps: Tensor, policy_rejected_mean_logps: Tensor) -> Tensor:
    """ORPO's odds-ratio term (Hong et al. 2024, Eq. 7): −log σ(log odds(y_w) − log odds(y_l))."""
    return -F.logsigmoid(log_odds(policy_chosen_mean_logps) - log_odds(policy_rejected_mean_logps))


def orpo_loss(policy_chosen_mean_logps: Tensor, policy_rejected_mean_logps: Tensor, lambda_: float) -> Tensor:
    """ORPO (Hong et al. 2024, Eq. 6): L_SFT + λ L_OR per example, with L_SFT = −m(y_w) the chosen response's
    token-mean NLL (Eq. 2). One stage: the SFT term raises y_w, the odds ratio pushes y_l below it, and there
    is no reference model.
    """
    return -policy_chosen_mean_logps + lambda_ * odds_ratio_loss(policy_chosen_mean_logps, policy_rejected_mean_logps)
