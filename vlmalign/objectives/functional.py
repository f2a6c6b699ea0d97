"""Objective maths as plain functions on tensors (docs/design.md, rule 1; torchtune's rlhf losses as model).

Inputs are per-example *summed* response log-probs, shape (B,). Losses are per-example, shape (B,),
unreduced, unless the docstring says otherwise. Siblings with the same conventions: ``functional_kto`` (KTO's
unpaired loss and reference point) and ``functional_reference_free`` (SimPO, ORPO).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def token_mean(per_example_sums: Tensor, token_counts: Tensor) -> Tensor:
    """Σ_b x_b / Σ_b |y_b| over the whole batch (scalar). Rows with no tokens add nothing to either sum;
    a batch with no tokens at all gives exactly 0 (never NaN)."""
    return per_example_sums.sum() / token_counts.sum().clamp(min=1)


def sft_loss(summed_logps: Tensor, token_counts: Tensor, reduction: str = "token") -> Tensor:
    """Negative log-likelihood of the responses (scalar).

    ``reduction="token"``: token mean over the whole batch, −Σ_b s_b / Σ_b |y_b| (LLaVA's SFT loss).
    ``reduction="sequence"``: mean over examples of each response's token mean, −(1/B) Σ_b s_b / |y_b|,
    so a one-word answer ("yes") weighs as much as a twenty-word caption in a mixed batch; under the
    token mean such answers get a few percent of the gradient and a small model learns only their prior.

    Also nSFT's negative-supervision loss (arXiv 2411.14797, §3): the corrective question-answer turns
    built from the rejected response are trained on with this same SFT loss, labels on the answers.
    """
    if reduction == "token":
        return -token_mean(summed_logps, token_counts)
    if reduction == "sequence":
        answered = token_counts > 0  # rows with no response tokens carry no example to average
        return -(summed_logps[answered] / token_counts[answered]).sum() / answered.sum().clamp(min=1)
    raise ValueError(f"SFT reduction {reduction!r} is not one of 'token', 'sequence'")


def mixed_source_nll(real_logps: Tensor, real_counts: Tensor, synthetic_logps: Tensor, synthetic_counts: Tensor,
                     synthetic_weight: float = 1.0) -> Tensor:
    """Captioning NLL of a batch mixing real and synthetic samples (Synth², arXiv 2403.07750, §3.3; scalar):

        −(Σ_real s_b + w Σ_syn s_b) / (Σ_real |y_b| + w Σ_syn |y_b|)

    With w = 1 this is exactly the token-mean SFT loss of the pooled batch (what Synth² trains with); w < 1
    down-weights each synthetic token relative to a real one. Either side may have no rows.
    """
    numerator = real_logps.sum() + synthetic_weight * synthetic_logps.sum()
    denominator = real_counts.sum() + synthetic_weight * synthetic_counts.sum()
    return -numerator / denominator.clamp(min=1)


def token_kl_penalty(summed_kl: Tensor, token_counts: Tensor) -> Tensor:
    """Token-mean KL(π ‖ π_ref) over the whole batch (scalar): Σ_b Σ_t KL_{b,t} / Σ_b |y_b|.

    ``summed_kl`` is Σ_t KL(π(·|m, x, y_<t) ‖ π_ref(·|m, x, y_<t)) per example, the exact full-vocabulary
    KL at each response position (``vlmalign.models.logprobs.response_token_kl``). nSFT (arXiv
    2411.14797) is reference-free; adding this to its SFT losses is the ablation that asks whether a
    per-token constraint to the starting model, as RLHF has, adds anything to negative supervision.
    """
    return token_mean(summed_kl, token_counts)


def _margin(policy_chosen_logps: Tensor, policy_rejected_logps: Tensor, ref_chosen_logps: Tensor,
            ref_rejected_logps: Tensor) -> Tensor:
    """Δ = [s(y_w) − s_ref(y_w)] − [s(y_l) − s_ref(y_l)], the implicit-reward margin (before β)."""
    return (policy_chosen_logps - ref_chosen_logps) - (policy_rejected_logps - ref_rejected_logps)


def dpo_loss(policy_chosen_logps: Tensor, policy_rejected_logps: Tensor, ref_chosen_logps: Tensor,
             ref_rejected_logps: Tensor, beta: float, label_smoothing: float = 0.0) -> Tensor:
    """Sigmoid DPO, Rafailov et al. 2023 Eq. 7: −log σ(βΔ).

    ``label_smoothing`` ε > 0 gives the robust/conservative variant (cDPO: the label is flipped with
    probability ε): −(1−ε) log σ(βΔ) − ε log σ(−βΔ).
    """
    logits = beta * _margin(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    return -(1.0 - label_smoothing) * F.logsigmoid(logits) - label_smoothing * F.logsigmoid(-logits)


def ipo_loss(policy_chosen_logps: Tensor, policy_rejected_logps: Tensor, ref_chosen_logps: Tensor,
             ref_rejected_logps: Tensor, beta: float) -> Tensor:
    """IPO, Azar et al. 2023 (sampled loss): (Δ − 1/(2β))².

    Pass length-normalised log-probs (mean per token) for the usual IPO; the term does.
    """
    margin = _margin(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    return (margin - 1.0 / (2.0 * beta)) ** 2


def hinge_loss(policy_chosen_logps: Tensor, policy_rejected_logps: Tensor, ref_chosen_logps: Tensor,
               ref_rejected_logps: Tensor, beta: float) -> Tensor:
    """Hinge (SLiC-HF, Zhao et al. 2023, with DPO's reference log-ratios): max(0, 1 − βΔ)."""
    margin = _margin(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    return F.relu(1.0 - beta * margin)


def conditional_loss(policy_chosen_logps: Tensor, policy_corrupted_logps: Tensor, ref_chosen_logps: Tensor,
                     ref_corrupted_logps: Tensor, beta: float) -> Tensor:
    """mDPO conditional preference term (Wang et al. 2024, §3, "conditional preference optimization").

    Same response y_w, real image m preferred over corrupted m':
    −log σ(β[(s(y_w|m) − s_ref(y_w|m)) − (s(y_w|m') − s_ref(y_w|m'))]). Algebraically DPO with the
    corrupted-image view in the rejected slot.
    """
    return dpo_loss(policy_chosen_logps, policy_corrupted_logps, ref_chosen_logps, ref_corrupted_logps, beta)


def anchor_loss(policy_chosen_logps: Tensor, ref_chosen_logps: Tensor, beta: float, delta: float = 0.0) -> Tensor:
    """mDPO anchored preference term (Wang et al. 2024, §3, "anchored preference optimization").

    −log σ(β(s(y_w|m) − s_ref(y_w|m)) − δ): keeps the chosen reward above δ so DPO cannot lower the
    likelihood of both responses together.
    """
    return -F.logsigmoid(beta * (policy_chosen_logps - ref_chosen_logps) - delta)


def dpo_positive_loss(policy_chosen_logps: Tensor, policy_rejected_logps: Tensor, ref_chosen_logps: Tensor,
                      ref_rejected_logps: Tensor, beta: float, lambda_: float) -> Tensor:
    """DPO-Positive (DPOP; Pal et al. 2024, "Smaug", arXiv 2402.13228, Eq. 3):

        −log σ(β[Δ − λ · max(0, s_ref(y_w) − s(y_w))])

    DPO can lower the likelihood of the preferred response as long as the rejected one falls faster (the
    paper's §3 failure mode on pairs that differ in a few tokens); the penalty is zero while the policy keeps
    s(y_w) at or above the reference's and grows with every nat it loses there.
    """
    margin = _margin(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    penalty = F.relu(ref_chosen_logps - policy_chosen_logps)
    return -F.logsigmoid(beta * (margin - lambda_ * penalty))


def bco_loss(policy_chosen_logps: Tensor, policy_rejected_logps: Tensor, ref_chosen_logps: Tensor,
             ref_rejected_logps: Tensor, beta: float, delta: Tensor | float) -> Tensor:
    """Binary classifier optimisation (BCO; Jung et al. 2024, arXiv 2404.04656, §3, the paired loss with the
    reward shift δ):

        −log σ(r_w − δ) − log σ(−(r_l − δ)),   r = β (s − s_ref)

    Each response is classified on its own (chosen = 1, rejected = 0) with the implicit reward as logit; δ is
    the running mean of the rewards seen so far (the term keeps it), which the paper shows makes this binary
    loss an upper bound of the DPO loss. Pass δ detached: it is a statistic, not a parameter.
    """
    chosen_rewards = beta * (policy_chosen_logps - ref_chosen_logps)
    rejected_rewards = beta * (policy_rejected_logps - ref_rejected_logps)
    return -F.logsigmoid(chosen_rewards - delta) - F.logsigmoid(-(rejected_rewards - delta))
