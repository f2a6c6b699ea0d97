"""Online-RL maths as plain functions on tensors: GAE, PPO's clipped losses, KL estimators, whitening, the
group-baseline advantage estimators (RLOO, GRPO, REINFORCE++), contrastive rewards and the reward model's
Bradley–Terry loss (docs/design.md, rule 1; the sibling of ``functional``).

Shapes. A *sequence* quantity is (B,): one reward per sampled response. A *token* quantity is (B, T): one value
per response token, the responses right-padded, with a ``mask`` (B, T) that is 1 on a response's tokens and 0 on
padding; the tokens of a response are contiguous from column 0 (how the trainer lays out rollouts). Group
estimators take rewards of ``B = P · G`` responses, the G responses of one prompt *consecutive* (rows
p·G … p·G + G − 1), which is the order the rollout sampler returns them in. Nothing here reduces over the batch
unless its docstring says so: losses are per token, reductions are the caller's choice.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# GRPO's guard on a group whose rewards are all equal (std 0): TRL's GRPOTrainer adds the same 1e-4.
GRPO_STD_EPS = 1e-4


# --- masked statistics and whitening ---------------------------------------------------------------------------

def masked_mean(values: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of ``values`` where ``mask`` is 1 (over all entries, or along ``dim``); 0 where nothing is masked in."""
    mask = mask.to(values.dtype)
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def masked_var(values: Tensor, mask: Tensor, unbiased: bool = True) -> Tensor:
    """Variance of the masked-in entries (scalar); ``unbiased`` divides by n − 1 (Bessel), as torch.var does."""
    mask = mask.to(values.dtype)
    mean = masked_mean(values, mask)
    squares = masked_mean((values - mean) ** 2, mask)
    if not unbiased:
        return squares
    count = mask.sum()
    return squares * count / (count - 1).clamp(min=1)


def masked_whiten(values: Tensor, mask: Tensor, shift_mean: bool = True, eps: float = 1e-8) -> Tensor:
    """(x − μ) / sqrt(σ² + eps) over the masked-in entries of the whole tensor, 0 at masked-out entries.

    μ and σ² (unbiased) are statistics of the batch, so the gradient does not flow through them (detached).
    ``shift_mean=False`` adds μ back, (x − μ)/σ + μ: the spread is normalised but the mean kept, what PPO
    implementations use for *rewards*, whose sign carries meaning (Ziegler et al. 2019; TRL's ``masked_whiten``).
    """
    mean = masked_mean(values, mask).detach()
    var = masked_var(values, mask).detach()
    whitened = (values - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        whitened = whitened + mean
    return whitened * mask.to(values.dtype)


# --- rewards on tokens -----------------------------------------------------------------------------------------

def last_token_rewards(scores: Tensor, mask: Tensor) -> Tensor:
    """(B, T): each response's sequence-level score (B,) placed on its last token, 0 elsewhere. An outcome reward is
    earned when the response ends (the terminal reward of the token-level MDP, Ouyang et al. 2022 §3.5)."""
    lengths = mask.long().sum(1)
    out = torch.zeros(mask.shape, dtype=scores.dtype, device=scores.device)
    has_tokens = lengths > 0
    rows = torch.arange(mask.shape[0], device=mask.device)[has_tokens]
    out[rows, lengths[has_tokens] - 1] = scores[has_tokens]
    return out


def kl_in_reward(scores: Tensor, token_kl: Tensor, mask: Tensor, kl_coef: float) -> Tensor:
    """Token rewards with the KL penalty folded in (Ouyang et al. 2022, eq. 2, per token as Ziegler et al. 2019):

        r_t = −β · KL_t + 1[t = last] · r(x, y)

    ``token_kl`` (B, T) is a per-token estimate of KL(π ‖ π_ref) at the sampled tokens (``kl_estimate``), detached:
    as a reward it is a number the policy is scored with, not a loss to differentiate.
    """
    return (last_token_rewards(scores, mask) - kl_coef * token_kl.detach()) * mask.to(scores.dtype)


def discounted_returns(rewards: Tensor, mask: Tensor, gamma: float = 1.0) -> Tensor:
    """G_t = Σ_{s ≥ t} γ^{s−t} r_s within each response, (B, T); 0 on padding (Sutton & Barto, eq. 3.8)."""
    mask = mask.to(rewards.dtype)
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        running = (rewards[:, t] + gamma * running) * mask[:, t]
        returns[:, t] = running
    return returns


# --- PPO: GAE, clipped surrogate, clipped value loss -----------------------------------------------------------

def gae(rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, lam: float) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016, eq. 16; PPO's truncated form, Schulman et al. 2017,
    eqs. 11–12), per token, (B, T) each:

        δ_t = r_t + γ V_{t+1} − V_t,    Â_t = Σ_{l ≥ 0} (γλ)^l δ_{t+l},    returns R_t = Â_t + V_t

    The episode ends at a response's last token: V after it is 0 (a terminal state has no value) and nothing
    beyond it flows back. Returns are the value head's regression targets (the λ-return). Both are detached.
    """
    mask = mask.to(rewards.dtype)
    values = values.detach() * mask
    rewards = rewards.detach() * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    length = rewards.shape[1]
    for t in reversed(range(length)):
        next_value = values[:, t + 1] if t + 1 < length else torch.zeros_like(running)  # 0 after the last token
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * lam * running) * mask[:, t]
        advantages[:, t] = running
    return advantages, (advantages + values) * mask


def ppo_clipped_surrogate(logps: Tensor, old_logps: Tensor, advantages: Tensor, clip_eps: float
                          ) -> tuple[Tensor, Tensor]:
    """PPO's clipped surrogate as a per-token *loss* (Schulman et al. 2017, eq. 7, negated), and where the clip
    bites, (B, T) each:

        ρ_t = exp(log π(a_t) − log π_old(a_t)),   L_t = −min(ρ_t Â_t, clip(ρ_t, 1 − ε, 1 + ε) Â_t)

    ``clipped`` is 1 where the clipped term is the smaller (its gradient is then 0): the "clip fraction" metric.
    At ρ = 1 (the first epoch on fresh samples) L_t = −Â_t and ∂L/∂ log π = −Â_t: plain policy gradient.
    """
    ratio = torch.exp(logps - old_logps.detach())
    advantages = advantages.detach()
    unclipped = -ratio * advantages
    clipped = -torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    return torch.maximum(unclipped, clipped), (clipped > unclipped).to(logps.dtype)


def clipped_value_loss(values: Tensor, old_values: Tensor, returns: Tensor, clip_range: float) -> Tensor:
    """PPO's clipped value loss per token, (B, T) (OpenAI baselines' ppo2, as used for LMs by Ziegler et al. 2019
    and TRL's PPOTrainer; not in the PPO paper itself):

        V^clip = V_old + clip(V − V_old, −c, c),    L^V = ½ max((V − R)², (V^clip − R)²)

    The value head cannot move further than c from the values it had when the rollout was scored, per epoch.
    """
    old_values, returns = old_values.detach(), returns.detach()
    clipped = old_values + torch.clamp(values - old_values, -clip_range, clip_range)
    return 0.5 * torch.maximum((values - returns) ** 2, (clipped - returns) ** 2)


# --- KL estimators ---------------------------------------------------------------------------------------------

KL_ESTIMATORS = ("k1", "k2", "k3")


def kl_estimate(logps: Tensor, ref_logps: Tensor, kind: str = "k3") -> Tensor:
    """Per-token estimators of KL(π ‖ π_ref) from the log-probs of tokens sampled from π (J. Schulman, "Approximating
    KL divergence", 2020). With log r = log π_ref(a) − log π(a):

        k1 = −log r                  unbiased, high variance, can be negative
        k2 = ½ (log r)²              biased (low for close policies), always ≥ 0
        k3 = (r − 1) − log r         unbiased and always ≥ 0 (GRPO's KL term, Shao et al. 2024, eq. 4)

    Gradients flow through ``logps`` (the policy); ``ref_logps`` is detached.
    """
    log_ratio = ref_logps.detach() - logps
    if kind == "k1":
        return -log_ratio
    if kind == "k2":
        return 0.5 * log_ratio**2
    if kind == "k3":
        return torch.expm1(log_ratio) - log_ratio
    raise ValueError(f"KL estimator {kind!r} is not one of {KL_ESTIMATORS}")


# --- advantage estimators (sequence level) ---------------------------------------------------------------------

def _groups(rewards: Tensor, group_size: int, minimum: int) -> Tensor:
    """(P, G) view of (B,) rewards whose G responses per prompt are consecutive."""
    if group_size < minimum or rewards.ndim != 1 or rewards.shape[0] % group_size:
        raise ValueError(f"{rewards.shape[0]} rewards cannot be split into groups of {group_size} (need a size >= "
                         f"{minimum} that divides the batch)")
    return rewards.view(-1, group_size)


def rloo_advantages(rewards: Tensor, group_size: int) -> Tensor:
    """REINFORCE leave-one-out (Kool et al. 2019; Ahmadian et al. 2024, arXiv 2402.14740, "RLOO"), (B,):

        A_i = r_i − (1 / (G − 1)) Σ_{j ≠ i} r_j = G / (G − 1) · (r_i − mean_j r_j)

    Each sample's baseline is the mean reward of the *other* samples of its prompt, so it is independent of the
    sample and the estimator stays unbiased. Needs G ≥ 2.
    """
    grouped = _groups(rewards, group_size, 2)
    others = (grouped.sum(1, keepdim=True) - grouped) / (group_size - 1)
    return (grouped - others).reshape(-1)


def grpo_advantages(rewards: Tensor, group_size: int, scale: bool = True, eps: float = GRPO_STD_EPS) -> Tensor:
    """GRPO's outcome-supervision advantage (Shao et al. 2024, DeepSeekMath, arXiv 2402.03300, §4.1.2), (B,):

        Â_i = (r_i − mean(r_group)) / (std(r_group) + eps)

    given to every token of response i. std is the sample (unbiased, n − 1) standard deviation, as TRL's
    GRPOTrainer computes it. ``scale=False`` keeps only the centring (Dr. GRPO, Liu et al. 2025, arXiv 2503.20783:
    dividing by the std over-weights prompts that are nearly always right or wrong). Needs G ≥ 2.
    """
    grouped = _groups(rewards, group_size, 2)
    centred = grouped - grouped.mean(1, keepdim=True)
    if scale:
        centred = centred / (grouped.std(1, keepdim=True) + eps)
    return centred.reshape(-1)


def reinforce_pp_advantages(scores: Tensor, token_kl: Tensor, mask: Tensor, kl_coef: float, gamma: float = 1.0
                            ) -> Tensor:
    """REINFORCE++ (Hu 2025, arXiv 2501.03262, its token reward and advantage), per token, (B, T):

        r_t = 1[t = last] r(x, y) − β KL_t,   A_t = Σ_{s ≥ t} γ^{s−t} r_s   (= r(x, y) − β Σ_{s ≥ t} KL_s at γ = 1)

    then whitened over every response token of the *global batch* (masked mean and std), the paper's replacement
    for a critic or a per-prompt group baseline. ``token_kl`` is the per-token KL estimate (the paper: k1 against
    the SFT model), detached.
    """
    returns = discounted_returns(kl_in_reward(scores, token_kl, mask, kl_coef), mask, gamma)
    return masked_whiten(returns, mask)


# --- contrastive rewards ---------------------------------------------------------------------------------------

def contrastive_rewards(rewards: Tensor, baseline_rewards: Tensor) -> Tensor:
    """Contrastive reward (Shen et al. 2024, "Improving Reinforcement Learning from Human Feedback Using Contrastive
    Rewards", arXiv 2403.07708), (B,):

        r_c(x, y) = r(x, y) − (1/k) Σ_{j=1..k} r(x, y_j)

    ``baseline_rewards`` (B, k): the reward model's scores of the k responses the SFT policy sampled, offline, for
    the prompt of each row (cached once). The baseline is a per-prompt difficulty offset: PPO then rewards doing
    better than the starting policy does on *this* prompt, not having an easy prompt.
    """
    if baseline_rewards.ndim != 2 or baseline_rewards.shape[0] != rewards.shape[0] or baseline_rewards.shape[1] < 1:
        raise ValueError(f"baseline rewards {tuple(baseline_rewards.shape)} must be (B, k >= 1) for {rewards.shape[0]}"
                         " rewards")
    return rewards - baseline_rewards.mean(1)


# --- reward model ----------------------------------------------------------------------------------------------

def bradley_terry_loss(chosen_rewards: Tensor, rejected_rewards: Tensor, margin: Tensor | float = 0.0) -> Tensor:
    """Pairwise reward-model loss, (B,): −log σ(r(x, y_w) − r(x, y_l) − m) (Bradley & Terry 1952; Ouyang et al.
    2022, eq. 1; the margin m as Llama 2, Touvron et al. 2023, eq. 2). m = 0 is the plain Bradley–Terry
    likelihood; m > 0 asks for a gap of at least m."""
    return -F.logsigmoid(chosen_rewards - rejected_rewards - margin)
