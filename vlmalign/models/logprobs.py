"""The one log-prob module every objective stands on.

Objectives need s(y|m): the summed log-probability of the response tokens given image and prompt
(docs/design.md, "Objective maths"). Prompt, image and padding positions carry label ``IGNORE_INDEX``.

Why it takes hidden states: a full forward would project *every* position (image tokens and prompt
included) to the vocabulary and then take an fp32 log-softmax over all of it, which is what runs out
of memory in DPO (docs/design.md, "Pitfalls designed out"). Selecting the response positions first (``response_states``)
and projecting only those, in chunks, costs ~|response|/|sequence| of that. Passing ``head=None``
treats the input as logits, which is the plain path tests compare against.

Two statistics are computed from the same selected positions: the summed log-prob of the labelled
tokens (``states_logps``) and, for objectives that regularise towards a reference policy token by
token, the summed per-token KL(π ‖ π_ref) over the full vocabulary (``response_token_kl``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from vlmalign.logps import ResponseLogProbs

IGNORE_INDEX = -100

Head = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class ResponseStates:
    """The hidden states at the positions that predict a labelled token, flattened over the batch.

    Row i is the state at position t-1 of sequence ``batch_index[i]`` and predicts ``targets[i]``
    (the token at t): the causal shift is done once, here. Rows are in (sequence, position) order, so
    the rows of a contiguous range of sequences are a contiguous slice (``select``).
    """

    rows: Tensor  # (N, H) hidden states, or (N, V) logits when head is None
    targets: Tensor  # (N,)
    batch_index: Tensor  # (N,)
    batch_size: int
    head: Head | None = None  # (n, H) -> (n, V) logits: the model's lm_head

    def logits(self, start: int, stop: int) -> Tensor:
        """fp32 logits of rows start..stop-1."""
        chunk = self.rows[start:stop]
        return (self.head(chunk) if self.head is not None else chunk).float()

    def select(self, start: int, stop: int) -> ResponseStates:
        """The states of sequences start..stop-1, re-indexed from 0 (one view of a concatenated batch)."""
        bounds = torch.tensor([start, stop], device=self.batch_index.device)
        lo, hi = torch.searchsorted(self.batch_index, bounds).tolist()
        return ResponseStates(self.rows[lo:hi], self.targets[lo:hi], self.batch_index[lo:hi] - start, stop - start,
                              self.head)

    def per_sequence(self, values: Tensor) -> Tensor:
        """Sum per-row ``values`` (N,) into per-sequence totals (B,)."""
        out = torch.zeros(self.batch_size, dtype=values.dtype, device=self.batch_index.device)
        return out.index_add(0, self.batch_index, values)

    def counts(self) -> Tensor:
        """Number of labelled tokens per sequence (B,)."""
        return self.per_sequence(torch.ones_like(self.batch_index))

    def per_position(self, values: Tensor) -> tuple[Tensor, Tensor]:
        """Per-row ``values`` (N,) laid out as (B, L) per sequence and response position, L the longest response,
        left-aligned, and the (B, L) mask of real entries: the token layout of the online-RL maths
        (``vlmalign.objectives.functional_rl``). Rows are in (sequence, position) order, so a row's position is its
        offset from its sequence's first row."""
        counts = self.counts()
        starts = torch.cumsum(counts, 0) - counts
        position = torch.arange(values.shape[0], device=values.device) - starts[self.batch_index]
        width = int(counts.max()) if counts.numel() else 0
        out = values.new_zeros(self.batch_size, width)
        mask = torch.zeros(self.batch_size, width, dtype=torch.bool, device=values.device)
        out = out.index_put((self.batch_index, position), values)
        mask[self.batch_index, position] = True
        return out, mask


def response_states(hidden: Tensor, labels: Tensor, head: Head | None = None) -> ResponseStates:
    """Select the rows of ``hidden`` that predict a labelled token (the masking and the causal shift).

    Args:
        hidden: (B, T, H) last hidden states, or (B, T, V) logits when ``head`` is None.
        labels: (B, T) token ids aligned with the *input* positions; ``IGNORE_INDEX`` where no loss.
            Position t is predicted from position t-1.
        head: maps (N, H) hidden rows to (N, V) logits (the model's ``lm_head``).
    """
    if hidden.shape[:2] != labels.shape:
        raise ValueError(f"hidden {tuple(hidden.shape)} and labels {tuple(labels.shape)} disagree on (B, T)")
    targets = labels[:, 1:]
    batch_idx, pos_idx = (targets != IGNORE_INDEX).nonzero(as_tuple=True)
    return ResponseStates(hidden[:, :-1][batch_idx, pos_idx], targets[batch_idx, pos_idx], batch_idx,
                          labels.shape[0], head)


def _chunked(total: int, chunk_size: int, per_chunk: Callable[[int, int], Tensor], like: Tensor) -> Tensor:
    """Concatenate ``per_chunk(start, stop)`` over row chunks: bounds the (chunk, V) fp32 buffers."""
    pieces = [per_chunk(start, min(start + chunk_size, total)) for start in range(0, total, chunk_size)]
    return torch.cat(pieces) if pieces else like.new_zeros(0, dtype=torch.float32)


def states_token_logps(states: ResponseStates, chunk_size: int = 4096) -> Tensor:
    """log π(y_t | m, x, y_<t) of every labelled token, (N,) in the states' row order: what online RL's per-token
    ratios and KL estimates read (``ResponseStates.per_position`` lays them out per sequence)."""

    def token_logps(start: int, stop: int) -> Tensor:
        logits = states.logits(start, stop)
        target_logit = logits.gather(-1, states.targets[start:stop, None]).squeeze(-1)
        return target_logit - torch.logsumexp(logits, dim=-1)

    return _chunked(states.rows.shape[0], chunk_size, token_logps, states.rows)


def states_logps(states: ResponseStates, chunk_size: int = 4096) -> ResponseLogProbs:
    """Summed log-probs of the labelled tokens of each sequence, and their number."""
    return ResponseLogProbs(states.per_sequence(states_token_logps(states, chunk_size)), states.counts())


def response_logps(
    hidden: Tensor,
    labels: Tensor,
    head: Head | None = None,
    chunk_size: int = 4096,
) -> ResponseLogProbs:
    """Summed log-probs of the labelled tokens of each sequence (see ``response_states`` for the args).

    ``chunk_size``: rows projected at once, bounding the (N, V) fp32 buffer.
    """
    return states_logps(response_states(hidden, labels, head), chunk_size)


def token_kl(policy_logits: Tensor, reference_logits: Tensor) -> Tensor:
    """KL(π ‖ π_ref) = Σ_v π(v) [log π(v) − log π_ref(v)] per row, from (N, V) logits; shape (N,).

    The exact, full-vocabulary KL of the next-token distributions (not the single-sample estimate
    log π(y_t) − log π_ref(y_t) that PPO-style penalties use), as the per-token KL ablation of nSFT
    (arXiv 2411.14797) needs.
    """
    log_p = F.log_softmax(policy_logits, dim=-1)
    log_q = F.log_softmax(reference_logits, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def response_token_kl(policy: ResponseStates, reference: ResponseStates, chunk_size: int = 4096) -> Tensor:
    """Σ_t KL(π(·|m, x, y_<t) ‖ π_ref(·|m, x, y_<t)) over the response positions of each sequence, (B,).

    ``policy`` and ``reference`` are the states of the *same* sequences (same labels), so their rows
    line up position by position. Only the policy side carries gradients: the reference's logits are
    computed without them (the reference never trains). Chunked like ``states_logps``.
    """
    if (policy.batch_size != reference.batch_size or not torch.equal(policy.batch_index, reference.batch_index)
            or not torch.equal(policy.targets, reference.targets)):
        raise ValueError("policy and reference states are not of the same sequences (labels differ); the per-token "
                         "KL needs both computed on the same batch and view")

    def kl_rows(start: int, stop: int) -> Tensor:
        with torch.no_grad():
            reference_logits = reference.logits(start, stop)
        return token_kl(policy.logits(start, stop), reference_logits)

    return policy.per_sequence(_chunked(policy.rows.shape[0], chunk_size, kl_rows, policy.rows))
