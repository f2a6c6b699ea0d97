"""The online policy-gradient term (``objective=grpo``, ``rloo``, ``reinforce_pp``): one clipped PPO-style surrogate
whose advantage estimator is a config option, with a per-token KL to the reference either in the loss or in the
reward. The maths is ``functional_rl``'s; this class picks and combines it.

Per rollout batch (B = P prompts × G samples, a prompt's samples consecutive) the trainer
(``vlmalign.rl.online_module``) calls ``advantages`` once, then the term itself once per PPO epoch:

- ``grpo`` (Shao et al. 2024, arXiv 2402.03300, eq. 3): group-normalised outcome advantages, KL (k3) in the loss,
  the loss averaged over each response's tokens, then over responses.
- ``rloo`` (Ahmadian et al. 2024, arXiv 2402.14740): leave-one-out baseline over the G samples; the KL is part of
  the reward (r − β Σ_t KL_t), as in that paper and TRL's RLOOTrainer.
- ``reinforce_pp`` (Hu 2025, arXiv 2501.03262): per-token KL in the reward, returns-to-go whitened over the global
  batch; no group needed (G may be 1).
- ``gae`` (PPO as RLHF runs it: Ziegler et al. 2019, Ouyang et al. 2022): a value head V(s_t) on the policy's trunk
  (``critic=trunk``) or on a separate critic model (``critic=separate``), per-token KL in the reward, GAE(γ, λ)
  advantages (whitened by default; rewards optionally scaled), plus the clipped value loss weighted by ``vf_coef``;
  several ``ppo_epochs`` per rollout batch.

``kl_in_reward`` overrides where the KL goes (null: the estimator's paper default). With ``ppo_epochs`` = 1 the
sampling policy is the optimised one, ρ = 1 and the surrogate is the plain policy gradient (GRPO's default).
"""

from __future__ import annotations

from torch import Tensor

from vlmalign.errors import ConfigError
from vlmalign.logps import RolloutTokens
from vlmalign.objectives.base import ObjectiveOutput, ObjectiveTerm
from vlmalign.objectives.functional_rl import (
    KL_ESTIMATORS,
    clipped_value_loss,
    gae,
    grpo_advantages,
    kl_estimate,
    kl_in_reward,
    masked_mean,
    masked_whiten,
    ppo_clipped_surrogate,
    reinforce_pp_advantages,
    rloo_advantages,
)

ESTIMATORS = ("grpo", "rloo", "reinforce_pp", "gae")
GROUP_ESTIMATORS = ("grpo", "rloo")  # need G >= 2 samples per prompt
ROLLOUT_VIEW = "rollout"
# Where PPO's V(s_t) comes from: a head on the policy's own trunk (one model trained, no extra memory) or a separate
# critic, a copy of the starting policy with its own head (the textbook arrangement: two trained models resident).
CRITICS = ("trunk", "separate")


class PolicyGradientTerm(ObjectiveTerm):
    views = (ROLLOUT_VIEW,)
    online = True  # trained on its own samples by the online trainer, not on a dataset's responses

    def __init__(self, weight: float = 1.0, advantage: str = "grpo", group_size: int = 4, clip_eps: float = 0.2,
                 kl_coef: float = 0.04, kl_estimator: str = "k3", kl_in_reward: bool | None = None,
                 scale_rewards: bool = True, gamma: float = 1.0, ppo_epochs: int = 1, lam: float = 0.95,
                 vf_coef: float = 0.1, vf_clip: float = 0.2, whiten_advantages: bool = True,
                 whiten_rewards: bool = False, critic: str = "trunk") -> None:
        super().__init__(weight)
        key = "objective.terms.policy_gradient"
        if advantage not in ESTIMATORS:
            raise ConfigError(f"{key}.advantage={advantage!r} is not one of {ESTIMATORS}")
        if kl_estimator not in KL_ESTIMATORS:
            raise ConfigError(f"{key}.kl_estimator={kl_estimator!r} is not one of {KL_ESTIMATORS}")
        minimum = 2 if advantage in GROUP_ESTIMATORS else 1
        if not isinstance(group_size, int) or group_size < minimum:
            raise ConfigError(f"{key}.group_size={group_size!r}: advantage={advantage} needs at least {minimum} "
                              "samples per prompt (its baseline is the other samples of the prompt)")
        if clip_eps <= 0 or kl_coef < 0 or not 0 < gamma <= 1 or not isinstance(ppo_epochs, int) or ppo_epochs < 1:
            raise ConfigError(f"{key}: clip_eps={clip_eps} must be > 0, kl_coef={kl_coef} >= 0, gamma={gamma} in "
                              f"(0, 1] and ppo_epochs={ppo_epochs} an integer >= 1")
        if not 0 <= lam <= 1 or vf_coef < 0 or vf_clip <= 0:
            raise ConfigError(f"{key}: lam={lam} must be in [0, 1], vf_coef={vf_coef} >= 0 and vf_clip={vf_clip} > 0")
        self.lam, self.vf_coef, self.vf_clip = float(lam), float(vf_coef), float(vf_clip)
        self.whiten_advantages, self.whiten_rewards = bool(whiten_advantages), bool(whiten_rewards)
        if critic not in CRITICS:
            raise ConfigError(f"{key}.critic={critic!r} is not one of {CRITICS}")
        self.needs_values = advantage == "gae"  # V(s_t) per token: the online trainer adds the critic
        self.critic = critic
        self.advantage, self.group_size, self.clip_eps = advantage, group_size, float(clip_eps)
        self.kl_coef, self.kl_estimator = float(kl_coef), kl_estimator
        self.kl_in_reward = advantage != "grpo" if kl_in_reward is None else bool(kl_in_reward)
        self.scale_rewards, self.gamma, self.ppo_epochs = bool(scale_rewards), float(gamma), ppo_epochs
        # The reference's per-token log-probs are needed for any KL: only a strategy running a model can give them.
        self.token_kl_views = (ROLLOUT_VIEW,) if self.kl_coef > 0 else ()  # type: ignore[misc]

    def advantages(self, scores: Tensor, old_logps: Tensor, ref_logps: Tensor | None, mask: Tensor,
                   values: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Per-token advantages (B, L) of one rollout batch from its sequence scores (B,), and the value head's
        targets (B, L) for ``gae`` (None otherwise); ``values``: V(s_t) when the batch was scored (``gae`` only)."""
        mask = mask.to(old_logps.dtype)
        token_kl = kl_estimate(old_logps, ref_logps, self.kl_estimator) * mask if self.kl_coef else None
        in_reward = token_kl if self.kl_in_reward and token_kl is not None else old_logps.new_zeros(old_logps.shape)
        if self.advantage == "reinforce_pp":
            return reinforce_pp_advantages(scores, in_reward, mask, self.kl_coef, self.gamma), None
        if self.advantage == "gae":
            rewards = kl_in_reward(scores, in_reward, mask, self.kl_coef)
            if self.whiten_rewards:
                rewards = masked_whiten(rewards, mask, shift_mean=False)
            advantages, returns = gae(rewards, values, mask, self.gamma, self.lam)
            return (masked_whiten(advantages, mask) if self.whiten_advantages else advantages), returns
        scores = scores - self.kl_coef * in_reward.sum(1)  # RLOO: the sequence KL in the reward (0 when in the loss)
        if self.advantage == "grpo":
            sequence = grpo_advantages(scores, self.group_size, self.scale_rewards)
        else:
            sequence = rloo_advantages(scores, self.group_size)
        return sequence[:, None] * mask, None

    def __call__(self, tokens: RolloutTokens, ref=None) -> ObjectiveOutput:  # type: ignore[override]
        mask = tokens.mask.to(tokens.logps.dtype)
        per_token, clipped = ppo_clipped_surrogate(tokens.logps, tokens.old_logps, tokens.advantages, self.clip_eps)
        metrics = {"policy/clip_fraction": masked_mean(clipped, mask).detach()}
        if self.kl_coef:
            token_kl = kl_estimate(tokens.logps, tokens.ref_logps, self.kl_estimator)
            metrics["kl"] = masked_mean(token_kl, mask).detach()  # mean per-token KL estimate to the reference
            if not self.kl_in_reward:  # GRPO eq. 3: − β D_KL per token, beside the clipped surrogate
                per_token = per_token + self.kl_coef * token_kl
        if self.needs_values:  # PPO's value loss beside the surrogate, on the same tokens
            value_loss = clipped_value_loss(tokens.values, tokens.old_values, tokens.returns, self.vf_clip)
            per_token = per_token + self.vf_coef * value_loss
            metrics["value/loss"] = masked_mean(value_loss, mask).detach()
        # GRPO eq. 3's 1/G Σ_i 1/|o_i| Σ_t: each response's token mean, then the mean over responses
        loss = masked_mean(per_token, mask, dim=1).mean()
        return ObjectiveOutput(loss, metrics)
