"""Objective maths as plain functions on tensors (DESIGN.md rule 1; torchtune's rlhf losses as model).

Inputs are per-example *summed* response log-probs, shape (B,). Losses are per-example, shape (B,),
unreduced, unless the docstring says otherwise.
"""

from __future__ import annotations

from torch import Tensor


def sft_loss(summed_logps: Tensor, token_counts: Tensor) -> Tensor:
    """Token-mean negative log-likelihood over the whole batch (scalar): −Σ_b s_b / Σ_b |y_b|."""
    return -summed_logps.sum() / token_counts.sum().clamp(min=1)
