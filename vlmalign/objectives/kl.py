"""Per-token KL(π ‖ π_ref) on one view: nSFT's KL ablation (arXiv 2411.14797).

nSFT itself is reference-free; this term adds the token-level constraint to the starting model that
RLHF carries, so ``objective=nsft_kl`` can ask whether it matters. It needs the reference policy's
full next-token distribution at every response position, so it runs only with a reference strategy
that runs a model: reference=frozen or reference=lora_disabled (the precomputed cache stores summed
log-probs only and is refused when the module is built).
"""

from __future__ import annotations

from vlmalign.errors import ConfigError
from vlmalign.objectives.base import LogProbs, ObjectiveOutput, ObjectiveTerm
from vlmalign.objectives.functional import token_kl_penalty


class TokenKLTerm(ObjectiveTerm):
    """Σ_b Σ_t KL(π(·|m, x, y_<t) ‖ π_ref(·|m, x, y_<t)) / Σ_b |y_b| over the response tokens of ``view``."""

    def __init__(self, weight: float = 1.0, view: str = "chosen") -> None:
        super().__init__(weight)
        self.view = view
        self.views = (view,)  # type: ignore[misc]  # per-instance view choice
        self.token_kl_views = (view,)  # type: ignore[misc]

    def __call__(self, logps: LogProbs, ref: LogProbs | None) -> ObjectiveOutput:
        target = logps[self.view]
        if target.kl is None:
            raise ConfigError(f"the per-token KL of view {self.view!r} was not computed: run this term through "
                              "AlignmentModule with reference=frozen or reference=lora_disabled")
        loss = token_kl_penalty(target.kl, target.count)
        return ObjectiveOutput(loss, {f"kl/{self.view}": loss.detach()})
