"""The reward model's Bradley–Terry term (``objective=reward_model``): a loss on the scalar scores a reward head
gives the chosen and rejected responses of a preference pair, not on log-probs.

It is trained by ``vlmalign.rl.reward_module.RewardModelModule`` (the backbone plus a scalar head on the last
response token, ``vlmalign.models.reward_model``), which passes ``{view: scores (B,)}`` where other terms get
log-probs (``reads_rewards``). Reward-label noise (``label_noise``) is a property of the training pairs: the job
flips exactly that fraction of them before training (``vlmalign.data.label_noise``); validation pairs stay true,
so ``val/rewards/accuracies`` is the held-out accuracy against the true labels.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from vlmalign.errors import ConfigError
from vlmalign.objectives.base import ObjectiveOutput, ObjectiveTerm
from vlmalign.objectives.functional_rl import bradley_terry_loss
from vlmalign.objectives.rewards import reward_pair_metrics


class BradleyTerryTerm(ObjectiveTerm):
    """Mean over pairs of −log σ(r(x, y_w) − r(x, y_l) − margin) (``functional_rl.bradley_terry_loss``)."""

    views = ("chosen", "rejected")
    reads_rewards = True  # scores of a reward head, (B,) per view, instead of log-probs

    def __init__(self, weight: float = 1.0, margin: float = 0.0, label_noise: float = 0.0,
                 label_noise_seed: int = 0) -> None:
        super().__init__(weight)
        if not 0.0 <= float(label_noise) <= 1.0:
            raise ConfigError(f"objective.terms.bradley_terry.label_noise={label_noise} must be a fraction in [0, 1] "
                              "(of the training pairs whose labels are flipped)")
        if float(margin) < 0:
            raise ConfigError(f"objective.terms.bradley_terry.margin={margin} must be >= 0")
        self.margin, self.label_noise, self.label_noise_seed = float(margin), float(label_noise), int(label_noise_seed)

    def __call__(self, rewards: Mapping[str, Tensor], ref=None) -> ObjectiveOutput:  # type: ignore[override]
        chosen, rejected = rewards["chosen"], rewards["rejected"]
        loss = bradley_terry_loss(chosen, rejected, self.margin).mean()
        return ObjectiveOutput(loss, reward_pair_metrics(chosen, rejected))
