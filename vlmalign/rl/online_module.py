"""The online trainer (``objective=grpo``, ``rloo``, ``reinforce_pp``, ``ppo``): sample, score, take policy-gradient
steps.

One training step on a batch of P prompts:

1. **Rollout** (``vlmalign.rl.rollout``): G samples per prompt from the current policy, seeded by the step, laid
   out as the ``rollout`` view.
2. **Score** (``vlmalign.rl.rewards``): one reward per response (the exact scene reward, or a reward model).
3. **Old and reference log-probs**, per token, without gradients: the policy's (the sampling distribution, fixed
   for this batch's PPO epochs) and, when the term has a KL, the reference strategy's (``reference=frozen`` or
   ``lora_disabled``: per-token log-probs need the reference model's states, which a precomputed cache of summed
   log-probs cannot give, so it is refused when the module is built). Both from the project's one view forward
   and log-prob function (``vlmalign.models.views``, ``vlmalign.models.logprobs``).
4. **Advantages** once (the term's estimator), then ``ppo_epochs`` optimizer steps on the clipped surrogate (and,
   for PPO, the clipped value loss of a value head on the policy's trunk, or on a separate critic model).

Optimisation is manual (several optimizer steps per batch), so gradient clipping is done here with the trainer's
``gradient_clip_val`` moved into ``max_grad_norm`` (Lightning refuses its own clipping under manual optimisation).
``trainer.max_steps`` and the learning-rate schedule count optimizer steps: ``ppo_epochs`` of them per rollout batch.
Rollouts are seeded by the step, so a resumed run samples what the uninterrupted one did (tested: bit-identical
weights with ``ppo_epochs`` = 1). Known gap: the resumable sampler places a resumed run by optimizer steps too, so a
resumed run with ``ppo_epochs`` > 1 would start at the wrong prompt batch.
Metrics: ``train/reward`` (mean score), ``train/reward_std``, ``train/response_length``, ``train/kl``,
``train/policy/clip_fraction``, ``train/loss``; validation samples the val prompts with a fixed seed, logs
``val/reward`` and writes each response with its tokens, log-prob and reward to ``rollout_log`` (JSON lines; a
``val/rollouts`` table in wandb).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from vlmalign.data.shapes_prompts import PromptRecord
from vlmalign.errors import ConfigError
from vlmalign.logps import RolloutTokens
from vlmalign.models.backbone import VisionLanguageBackbone
from vlmalign.models.logprobs import ResponseStates, states_token_logps
from vlmalign.models.views import view_states
from vlmalign.module import TrainingModule
from vlmalign.objectives.base import Objective, ObjectiveOutput
from vlmalign.objectives.policy_gradient import ROLLOUT_VIEW, PolicyGradientTerm
from vlmalign.reference.base import NoReference, ReferencePolicy
from vlmalign.rl.rewards import RewardFunction, scene_scores
from vlmalign.rl.rollout import Rollout, RolloutSettings, collect_rollout
from vlmalign.rl.rollout_log import rollout_rows, write_rollouts

VIEWS = (ROLLOUT_VIEW,)
VALIDATION_STEP = -1  # the rollout "step" validation samples at: the same samples at every validation


def policy_gradient_term(objective: Objective) -> PolicyGradientTerm:
    """The objective's one online term."""
    return objective.only_term(PolicyGradientTerm, "an online-RL run (objective=grpo, rloo, reinforce_pp or ppo)")


def token_logps(states: ResponseStates) -> tuple[Tensor, Tensor]:
    """(B, L) per-token log-probs of a view's states and the (B, L) mask of real tokens."""
    return states.per_position(states_token_logps(states))


class OnlineRLModule(TrainingModule):
    def __init__(
        self,
        backbone: VisionLanguageBackbone,
        objective: Objective,
        reward: RewardFunction,
        rollout: RolloutSettings,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        reference: ReferencePolicy | None = None,
        share_prefix: bool = True,
        max_grad_norm: float | None = 1.0,
        rollout_log: str | Path | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler)
        self.automatic_optimization = False  # several optimizer steps (PPO epochs) per rollout batch
        self.term = policy_gradient_term(objective)
        if rollout.group_size != self.term.group_size:
            raise ConfigError(f"rollout.group_size={rollout.group_size} differs from the objective's group_size="
                              f"{self.term.group_size}: the estimator's groups must be the sampled groups")
        self.rollout_settings, self.share_prefix, self.max_grad_norm = rollout, share_prefix, max_grad_norm
        self.rollout_log = rollout_log  # where validation's rollouts are written (JSON lines); None: nowhere
        self.backbone = backbone.train()  # from_pretrained gives eval mode (see AlignmentModule)
        self.objective = objective
        self.reference = reference if reference is not None else NoReference()
        self.reference.check_serves(objective)  # a strategy without per-token states fails now, before any rollout
        self.reference.setup(self)
        self.reward = reward
        reward.check_policy(backbone)  # a reward model of another family or tokenizer fails now
        # PPO's critic: V(s_t) from the hidden state that predicts y_t, through a head on the policy's own trunk
        # (critic=trunk: no second model) or on a trained copy of the starting policy (critic=separate). The head is
        # zero-initialised, so the first advantages are GAE over V = 0, i.e. discounted rewards-to-go.
        self.value_head = torch.nn.Linear(backbone.hidden_size, 1) if self.term.needs_values else None
        self.critic = copy.deepcopy(backbone) if self.term.needs_values and self.term.critic == "separate" else None
        if self.value_head is not None:
            torch.nn.init.zeros_(self.value_head.weight)
            torch.nn.init.zeros_(self.value_head.bias)

    def prepare_rewards(self, datamodule) -> None:
        """Once before training, with the starting policy: the reward's offline pass over every prompt it will score
        (the contrastive baseline; nothing for the plain rewards)."""
        prompts = [datamodule.train_set[i] for i in range(len(datamodule.train_set))]
        prompts += [datamodule.val_set[i] for i in range(len(datamodule.val_set))]
        self.reward.prepare(self.backbone, prompts, datamodule.identity(), self.rollout_settings)

    def transfer_batch_to_device(self, batch, device, dataloader_idx: int):
        """Prompt records stay as they are (PIL images, scenes); a rollout puts its own batch on the policy's device."""
        return batch

    def score(self, prompts: list[PromptRecord], step: int) -> tuple[Rollout, Tensor]:
        rollout = collect_rollout(self.backbone, prompts, self.rollout_settings, step)
        return rollout, self.reward(rollout).float()

    def forward_tokens(self, batch: dict) -> tuple[Tensor, Tensor, Tensor | None]:
        """The current policy's per-token log-probs (B, L), the mask, and V(s_t) (B, L) when there is a value head;
        one view forward serves both."""
        states = view_states(self.backbone, batch, VIEWS, self.share_prefix)[ROLLOUT_VIEW]
        logps, mask = token_logps(states)
        if self.value_head is None:
            return logps, mask, None
        if self.critic is not None:
            states = view_states(self.critic, batch, VIEWS, self.share_prefix)[ROLLOUT_VIEW]
        values, _ = states.per_position(self.value_head(states.rows.float()).squeeze(-1))
        return logps, mask, values

    def prepare(self, rollout: Rollout, scores: Tensor,
                current: tuple[Tensor, Tensor, Tensor | None] | None = None) -> RolloutTokens:
        """Old and reference per-token log-probs (and old values) and the advantages of one rollout batch.
        ``current``: the policy's own (log-probs, mask, values) of this batch, already computed (with gradients)
        by a single-epoch step; detached they are the old ones, so no second forward is run for them."""
        with torch.no_grad():
            if current is None:
                old, mask, old_values = self.forward_tokens(rollout.batch)
            else:
                old, mask, old_values = (t.detach() if t is not None else None for t in current)
            ref = None
            if self.term.token_kl_views:
                ref, _ = token_logps(self.reference.states(rollout.batch, VIEWS)[ROLLOUT_VIEW])
            advantages, returns = self.term.advantages(scores, old, ref, mask, old_values)
        return RolloutTokens(old, old, ref, advantages, mask, old_values, old_values, returns)

    def step(self, batch: dict, prepared: RolloutTokens,
             current: tuple[Tensor, Tensor, Tensor | None] | None = None) -> ObjectiveOutput:
        """The term's loss on the current policy's log-probs (and values) of the rollout batch: one PPO epoch.
        ``current``: that forward's (log-probs, mask, values), when it has already been run."""
        logps, _, values = current if current is not None else self.forward_tokens(batch)
        return self.term(prepared._replace(logps=logps, values=values))

    def training_step(self, batch: dict, batch_idx: int) -> None:
        rollout, scores = self.score(batch["prompts"].items, self.global_step)
        # One epoch (GRPO, RLOO, REINFORCE++ as configured): the sampling policy is the current one, so the forward
        # that gives the loss its log-probs gives the old ones too (ratio 1, ~9% of a step saved); several epochs
        # need the old ones fixed before the first update.
        current = self.forward_tokens(rollout.batch) if self.term.ppo_epochs == 1 else None
        prepared = self.prepare(rollout, scores, current)
        optimizer, scheduler = self.optimizers(), self.lr_schedulers()
        for epoch in range(self.term.ppo_epochs):  # trainer.max_steps and the schedule count these optimizer steps
            out = self.step(rollout.batch, prepared, current if epoch == 0 else None)
            optimizer.zero_grad()
            self.manual_backward(out.loss)
            if self.max_grad_norm:
                self.clip_gradients(optimizer, gradient_clip_val=self.max_grad_norm, gradient_clip_algorithm="norm")
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        out.metrics.update(rollout_metrics(rollout, scores))
        self._log_output("train", out, len(rollout.responses))

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        rollout, scores = self.score(batch["prompts"].items, VALIDATION_STEP)
        metrics = rollout_metrics(rollout, scores)
        if self.rollout_log is not None and self.trainer.is_global_zero:
            with torch.no_grad():
                logps, mask, _ = self.forward_tokens(rollout.batch)
            write_rollouts(self.rollout_log, rollout_rows(self.global_step, rollout, scores, (logps * mask).sum(1)),
                           self.trainer.loggers)
        self.log_dict({f"val/{k}": v for k, v in metrics.items()}, on_step=False, on_epoch=True,
                      batch_size=len(rollout.responses), sync_dist=True)


def rollout_metrics(rollout: Rollout, scores: Tensor) -> dict[str, Tensor]:
    """Mean and spread of the reward the trainer learns from, response length, and, where the prompts carry their
    scene (the shapes world), ``scene_reward``: the exact reward of the same samples, whatever the trainer's reward
    is. A learned or noisy reward can rise while the exact one falls (reward hacking); this shows it."""
    lengths = torch.tensor([len(r) for r in rollout.responses], dtype=torch.float32)
    metrics = {"reward": scores.mean(), "reward_std": scores.std() if scores.numel() > 1 else scores.new_zeros(()),
               "response_length": lengths.mean()}
    exact = scene_scores(rollout)
    if exact is not None:
        metrics["scene_reward"] = torch.tensor(exact).mean()
    return metrics
