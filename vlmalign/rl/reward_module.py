"""Training a reward model (``objective=reward_model``): Bradley–Terry on preference pairs, one forward per step.

The LightningModule of a reward-model run, as ``AlignmentModule`` is of a policy's: the backbone plus a scalar
head (``vlmalign.models.reward_model.RewardModel``) scores the chosen and rejected views of every pair in one
forward (each image encoded once), and the objective's one ``BradleyTerryTerm`` turns the scores into the loss and
the ``rewards/*`` metrics (``val/rewards/accuracies``: held-out accuracy).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from vlmalign.models.reward_model import RewardModel
from vlmalign.module import TrainingModule
from vlmalign.objectives.base import Objective, ObjectiveOutput
from vlmalign.objectives.reward_model import BradleyTerryTerm
from vlmalign.reference.base import NoReference


def reward_term(objective: Objective) -> BradleyTerryTerm:
    """The objective's one Bradley–Terry term (a reward model has one loss)."""
    return objective.only_term(BradleyTerryTerm, "a reward-model run (objective=reward_model)")


class RewardModelModule(TrainingModule):
    def __init__(self, reward_model: RewardModel, objective: Objective,
                 optimizer: Callable[..., torch.optim.Optimizer],
                 scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None) -> None:
        super().__init__(optimizer, scheduler)
        self.term = reward_term(objective)
        self.reference = NoReference()  # a reward model is trained against labels, never against a reference policy
        # from_pretrained returns eval mode; Lightning keeps each module's mode (see AlignmentModule)
        self.reward_model = reward_model.train()

    def step(self, batch: dict) -> ObjectiveOutput:
        return self.term(self.reward_model.scores(batch, self.term.views))
