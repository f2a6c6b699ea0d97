"""KTO's maths (Ethayarajh et al. 2024, "KTO: Model Alignment as Prospect Theoretic Optimization", arXiv
2402.01306): a value per example relative to a reference point, not a preference between two responses.

With the implicit reward r(x, y) = s(y|x) − s_ref(y|x) (summed log-probs; β applied below) and the reference
point z_0 = KL(π(y'|x) ‖ π_ref(y'|x)), the KTO loss (§4.1) is E_{x,y}[λ_y − v(x, y)] with

    v(x, y) = λ_D σ(β(r(x, y) − z_0))   if y is desirable
              λ_U σ(β(z_0 − r(x, y)))   if y is undesirable

so an example's loss is λ_D (1 − σ(β(r − z_0))) or λ_U (1 − σ(β(z_0 − r))). See ``functional`` for shapes.
"""

from __future__ import annotations

import torch
from torch import Tensor


def kto_reference_point(policy_mismatched_logps: Tensor, ref_mismatched_logps: Tensor) -> Tensor:
    """z_0, a scalar: max(0, (1/m) Σ_i [s(y'_i|x_i) − s_ref(y'_i|x_i)]) over the batch (KTO §4.1, "in practice").

    y'_i is a response written for another prompt than x_i (the ``mismatched`` view), so the mean is a
    biased but cheap estimate of the policy's KL to the reference on this batch's prompts, clamped at 0 as
    a KL is. It is detached: the paper does not back-propagate through z_0, which only sets the reference
    point (it would otherwise be a second, unstable objective).
    """
    return (policy_mismatched_logps - ref_mismatched_logps).mean().clamp(min=0).detach()


def kto_loss(policy_logps: Tensor, ref_logps: Tensor, desirable: Tensor, reference_point: Tensor | float,
             beta: float, desirable_weight: float = 1.0, undesirable_weight: float = 1.0) -> Tensor:
    """Per-example KTO loss (§4.1): λ_D (1 − σ(β(r − z_0))) where ``desirable``, else λ_U (1 − σ(β(z_0 − r))).

    ``desirable`` is a bool tensor (B,) labelling each example; ``reference_point`` is z_0
    (``kto_reference_point``). A desirable response is pushed above the reference point, an undesirable one
    below it; the sigmoid saturates, so examples far on the right side stop pulling (prospect theory's
    diminishing sensitivity).
    """
    rewards = policy_logps - ref_logps
    signed = torch.where(desirable, rewards - reference_point, reference_point - rewards)
    weights = torch.where(desirable, torch.as_tensor(desirable_weight, dtype=rewards.dtype),
                          torch.as_tensor(undesirable_weight, dtype=rewards.dtype))
    return weights * (1.0 - torch.sigmoid(beta * signed))


def kto_pair_loss(policy_chosen_logps: Tensor, policy_rejected_logps: Tensor, ref_chosen_logps: Tensor,
                  ref_rejected_logps: Tensor, beta: float) -> Tensor:
    """KTO on paired data (``kto_pair``, as LLaMA-Factory and TRL's DPO trainer offered it): each pair is one
    desirable and one undesirable example, and the reference point of each half is estimated from the *other*
    half of the batch (KTO §4.1: the KL estimate uses responses that are not the example's own):

        ½ [(1 − σ(β(r_w − z_l))) + (1 − σ(β(z_w − r_l)))],   z_w = max(0, mean r_w), z_l = max(0, mean r_l)

    The ½ makes the batch mean equal the mean over the 2B unpaired examples. z_w and z_l are detached as in
    ``kto_reference_point`` (TRL's removed ``kto_pair`` back-propagated through them).
    """
    chosen_rewards = policy_chosen_logps - ref_chosen_logps
    rejected_rewards = policy_rejected_logps - ref_rejected_logps
    chosen_point = chosen_rewards.mean().clamp(min=0).detach()
    rejected_point = rejected_rewards.mean().clamp(min=0).detach()
    chosen_losses = 1.0 - torch.sigmoid(beta * (chosen_rewards - rejected_point))
    rejected_losses = 1.0 - torch.sigmoid(beta * (chosen_point - rejected_rewards))
    return 0.5 * (chosen_losses + rejected_losses)
