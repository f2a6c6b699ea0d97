"""The response log-prob record: what the models write and the objectives read.

It lives outside both packages so that the objective maths can name it without importing any model code
(docs/design.md, "The parts and the arrows": objectives import torch and vlmalign.errors only).
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class ResponseLogProbs(NamedTuple):
    """Per-example statistics of the response tokens, each shape (B,).

    ``sum``: summed log-prob; ``count``: number of response tokens; ``kl``: summed per-token
    KL(π ‖ π_ref) over the same tokens, present only when an objective term asked for it (the module
    fills it in; see ``ObjectiveTerm.token_kl_views``).
    """

    sum: Tensor
    count: Tensor
    kl: Tensor | None = None

    @property
    def mean(self) -> Tensor:
        """Length-normalised log-prob (IPO, RLAIF-V length checks)."""
        return self.sum / self.count.clamp(min=1)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, int):  # keep NamedTuple's field access working
            return tuple.__getitem__(self, index)
        return ResponseLogProbs(self.sum[index], self.count[index], None if self.kl is None else self.kl[index])

    def detach(self) -> ResponseLogProbs:
        return ResponseLogProbs(self.sum.detach(), self.count.detach(), None if self.kl is None else self.kl.detach())


class RouterLogits(NamedTuple):
    """The router logits of one forward of an MoE model, what the load-balancing term reads (Branch-Train-MiX,
    arXiv 2403.07816, §2.3). ``layers``: one (tokens, experts) tensor per MoE layer, rows in (sequence, position)
    order; ``token_mask``: (tokens,) True at real tokens (padding is routed too, but counts in no statistic);
    ``top_k``: experts each token is sent to."""

    layers: tuple[Tensor, ...]
    token_mask: Tensor
    top_k: int


class RolloutTokens(NamedTuple):
    """Per-token statistics of one rollout batch of sampled responses, each (B, L): the responses left-aligned,
    L the longest, ``mask`` True on real tokens (``ResponseStates.per_position``'s layout). What the online
    policy-gradient term reads (``vlmalign.objectives.policy_gradient``).

    ``logps``: log π(y_t) under the policy being optimised (with gradients); ``old_logps``: under the policy that
    sampled them (fixed for the PPO epochs of one rollout batch); ``ref_logps``: under the reference policy, present
    when a per-token KL is needed; ``advantages``: per token, computed once per rollout batch. With a value head
    (PPO): ``values`` V(s_t) now (with gradients), ``old_values`` when the batch was scored, ``returns`` the
    regression targets (GAE's λ-returns)."""

    logps: Tensor
    old_logps: Tensor
    ref_logps: Tensor | None
    advantages: Tensor
    mask: Tensor
    values: Tensor | None = None
    old_values: Tensor | None = None
    returns: Tensor | None = None
