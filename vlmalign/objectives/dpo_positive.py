"""DPO-Positive (Pal et al. 2024, arXiv 2402.13228) and length-normalised DPO: DPO variants, a line of maths each."""

from __future__ import annotations

from torch import Tensor

from vlmalign.errors import ConfigError
from vlmalign.objectives.dpo import DPOTerm
from vlmalign.objectives.functional import dpo_positive_loss


class DPOPositiveTerm(DPOTerm):
    """DPOP (Eq. 3): DPO with a penalty λ · max(0, s_ref(y_w) − s(y_w)) inside the sigmoid, so the chosen
    response's likelihood may not fall below the reference's."""

    def __init__(self, weight: float = 1.0, beta: float = 0.1, lambda_: float = 50.0) -> None:
        super().__init__(weight, beta)
        if lambda_ < 0:
            raise ConfigError(f"objective DPO-Positive term: lambda_={lambda_} must be >= 0")
        self.lambda_ = float(lambda_)

    def pair_loss(self, chosen: Tensor, rejected: Tensor, ref_chosen: Tensor, ref_rejected: Tensor) -> Tensor:
        return dpo_positive_loss(chosen, rejected, ref_chosen, ref_rejected, self.beta, self.lambda_)


class LengthNormalisedDPOTerm(DPOTerm):
    """Sigmoid DPO on token-mean log-ratios, −log σ(β[(m(y_w) − m_ref(y_w)) − (m(y_l) − m_ref(y_l))]) with m = s/|y|
    (the length-normalised DPO Tülu 3 trains with, arXiv 2411.15124, and SimPO discusses, arXiv 2405.14734).
    Normalising removes DPO's pull towards longer chosen responses; β must be larger than DPO's for the same
    logit scale (Tülu 3 uses β = 5)."""

    statistic = "mean"
