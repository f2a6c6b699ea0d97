"""The one log-prob function every objective stands on.

Objectives need s(y|m): the summed log-probability of the response tokens given image and prompt
(DESIGN.md, "Objective maths"). Prompt, image and padding positions carry label ``IGNORE_INDEX``.

Why it takes hidden states: a full forward would project *every* position (image tokens and prompt
included) to the vocabulary and then take an fp32 log-softmax over all of it, which is what runs out
of memory in DPO (DESIGN.md, "Pitfalls"). Selecting the response positions first and projecting
only those costs ~|response|/|sequence| of that. Passing ``head=None`` treats the input as logits,
which is the plain path tests compare against.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

IGNORE_INDEX = -100


class ResponseLogProbs(NamedTuple):
    """Per-example summed response log-prob and the number of response tokens, both shape (B,)."""

    sum: Tensor
    count: Tensor

    @property
    def mean(self) -> Tensor:
        """Length-normalised log-prob (IPO, RLAIF-V length checks)."""
        return self.sum / self.count.clamp(min=1)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, int):  # keep NamedTuple's field access working
            return tuple.__getitem__(self, index)
        return ResponseLogProbs(self.sum[index], self.count[index])

    def detach(self) -> ResponseLogProbs:
        return ResponseLogProbs(self.sum.detach(), self.count.detach())


def response_logps(
    hidden: Tensor,
    labels: Tensor,
    head: Callable[[Tensor], Tensor] | None = None,
    chunk_size: int = 4096,
) -> ResponseLogProbs:
    """Summed log-probs of the labelled tokens of each sequence.

    Args:
        hidden: (B, T, H) last hidden states, or (B, T, V) logits when ``head`` is None.
        labels: (B, T) token ids aligned with the *input* positions; ``IGNORE_INDEX`` where no loss.
            Position t is predicted from position t-1 (causal shift done here).
        head: maps (N, H) hidden rows to (N, V) logits (the model's ``lm_head``).
        chunk_size: rows projected at once, bounding the (N, V) fp32 buffer.
    """
    if hidden.shape[:2] != labels.shape:
        raise ValueError(f"hidden {tuple(hidden.shape)} and labels {tuple(labels.shape)} disagree on (B, T)")
    targets = labels[:, 1:]
    batch_idx, pos_idx = (targets != IGNORE_INDEX).nonzero(as_tuple=True)
    rows = hidden[:, :-1][batch_idx, pos_idx]
    token_targets = targets[batch_idx, pos_idx]

    pieces = []
    for start in range(0, rows.shape[0], chunk_size):
        chunk = rows[start : start + chunk_size]
        logits = (head(chunk) if head is not None else chunk).float()
        target_logit = logits.gather(-1, token_targets[start : start + chunk_size, None]).squeeze(-1)
        pieces.append(target_logit - torch.logsumexp(logits, dim=-1))
    token_logps = torch.cat(pieces) if pieces else hidden.new_zeros(0, dtype=torch.float32)

    batch = labels.shape[0]
    summed = torch.zeros(batch, dtype=torch.float32, device=hidden.device).index_add(0, batch_idx, token_logps)
    count = torch.zeros(batch, dtype=torch.long, device=hidden.device).index_add(
        0, batch_idx, torch.ones_like(batch_idx)
    )
    return ResponseLogProbs(summed, count)
