"""Contrastive rewards (Shen et al. 2024, arXiv 2403.07708; ``reward=contrastive``): r(x, y) − (1/k) Σ_j r(x, y_j).

Before training, an offline pass samples k responses per prompt from the starting (SFT) policy with the rollout's
sampling settings, scores them once with the base reward (a reward model, or the exact scene reward), and caches
each prompt's k scores. During training a response is rewarded by how much better it scores than the SFT policy
does on the same prompt (``functional_rl.contrastive_rewards``): the per-prompt mean is a difficulty offset that
the paper credits with lower variance and robustness to a noisy reward model.

The cache is a directory under ``cache_dir`` named by a fingerprint of everything that fixes its numbers: the
policy's weights and tokenizer, the base reward (a reward model's files by checksum), the prompts (the data's
identity and the prompt ids), k and the sampling settings. A change of any of them names another directory, so a
stale cache is never read; the directory is checksummed and rebuilt if it fails (``utils.files.build_once``), and
the identity stored inside is compared again on every load.

On the shapes world the pass also scores the same samples with the exact scene reward (``oracle``): the baseline's
**difficulty calibration** (``calibration``) is then how well the reward model's per-prompt offset tracks the
true per-prompt difficulty, the quantity the paper's offset is meant to remove.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch import Tensor

from vlmalign.data.shapes_prompts import PromptRecord
from vlmalign.errors import ConfigError
from vlmalign.models.backbone import VisionLanguageBackbone
from vlmalign.models.weights import tokenizer_digest, weights_digest
from vlmalign.objectives.functional_rl import contrastive_rewards
from vlmalign.rl.rewards import RewardFunction, scene_scores
from vlmalign.rl.rollout import Rollout, RolloutSettings, collect_rollout
from vlmalign.utils.files import build_once, fingerprint

log = logging.getLogger(__name__)
BASELINE_FILE = "baseline.json"
PROMPTS_PER_PASS = 16  # prompts sampled per generate pass of the offline baseline (k samples each)


def baseline_step(chunk: int) -> int:
    """The rollout "step" the offline pass samples chunk ``chunk`` at: negative and below validation's −1, so the
    baseline's draws are never the ones a training step (0, 1, ...) or a validation makes with the same seed."""
    return -2 - chunk


class ContrastiveReward(RewardFunction):
    name = "contrastive"

    def __init__(self, base: RewardFunction, k: int = 4, cache_dir: str = ".cache/contrastive") -> None:
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ConfigError(f"reward.k={k!r} must be an integer >= 1: the baseline is the mean reward of k samples "
                              "of the SFT policy per prompt")
        if not isinstance(base, RewardFunction) or isinstance(base, ContrastiveReward):
            raise ConfigError(f"reward.base must be a plain reward function (reward=scene or reward=model), got "
                              f"{type(base).__name__}")
        self.base, self.k, self.cache_dir = base, k, Path(cache_dir)
        self.baseline: dict[str, list[float]] = {}
        self.oracle: dict[str, list[float]] = {}  # the exact scene reward of the same samples (shapes world only)

    def check_policy(self, policy: VisionLanguageBackbone) -> None:
        self.base.check_policy(policy)

    def identity(self) -> dict:
        return {"name": self.name, "base": self.base.identity(), "k": self.k}

    def cache_identity(self, policy: VisionLanguageBackbone, prompts: list[PromptRecord], data_identity: dict,
                       settings: RolloutSettings) -> dict:
        """Everything that fixes the cached scores (module docstring); the group size is k here, not the rollout's."""
        sampling = {key: value for key, value in asdict(settings).items() if key not in ("group_size", "batch_size")}
        return {"policy": weights_digest(policy), "tokenizer": tokenizer_digest(policy.processor.tokenizer),
                "reward": self.base.identity(), "data": data_identity,
                "prompts": fingerprint([(p.sample_id, p.prompt) for p in prompts]), "k": self.k, "sampling": sampling}

    def prepare(self, policy: VisionLanguageBackbone, prompts: list[PromptRecord], data_identity: dict,
                settings: RolloutSettings) -> Path:
        """The offline pass: k samples per prompt from ``policy`` (the starting policy), scored once, cached (or
        the cache read back). Returns the cache directory."""
        identity = self.cache_identity(policy, prompts, data_identity, settings)
        sampling = replace(settings, group_size=self.k)

        def build(scratch: Path) -> None:
            scores: dict[str, list[float]] = {}
            oracle: dict[str, list[float]] = {}
            for chunk, start in enumerate(range(0, len(prompts), PROMPTS_PER_PASS)):
                batch = prompts[start : start + PROMPTS_PER_PASS]
                rollout = collect_rollout(policy, batch, sampling, step=baseline_step(chunk))
                grouped = self.base(rollout).float().view(len(batch), self.k).tolist()
                scores.update({p.sample_id: row for p, row in zip(batch, grouped)})
                exact = scene_scores(rollout)
                if exact is not None:
                    oracle.update({p.sample_id: exact[i * self.k : (i + 1) * self.k] for i, p in enumerate(batch)})
            stored = {"identity": identity, "scores": scores, "oracle": oracle if len(oracle) == len(scores) else {}}
            (scratch / BASELINE_FILE).write_text(json.dumps(stored) + "\n")

        directory = build_once(self.cache_dir / f"baseline-{fingerprint(identity)}", build, "contrastive baseline")
        stored = json.loads((directory / BASELINE_FILE).read_text())
        if stored["identity"] != json.loads(json.dumps(identity)):
            raise ConfigError(f"the contrastive baseline cache {directory} was computed for another policy, reward, "
                              "prompts or sampling settings; delete it")
        self.baseline.update(stored["scores"])
        self.oracle.update(stored.get("oracle", {}))
        log.info("contrastive baseline: %d prompts × k=%d samples (%s)", len(stored["scores"]), self.k, directory)
        return directory

    def __call__(self, rollout: Rollout) -> Tensor:
        scores = self.base(rollout)
        ids = [rollout.prompt_of(row).sample_id for row in range(len(rollout.responses))]
        missing = sorted({i for i in ids if i not in self.baseline})
        if missing:
            raise ConfigError(f"reward=contrastive has no baseline for prompts {missing[:3]}: its offline pass "
                              "(prepare) did not cover them")
        baseline = torch.tensor([self.baseline[i] for i in ids], dtype=scores.dtype, device=scores.device)  # (B, k)
        return contrastive_rewards(scores, baseline)

    def report(self) -> dict[str, float]:
        """The baseline's difficulty calibration against the exact scene reward of the same samples (empty off the
        shapes world): ``calibration``'s three correlations."""
        return calibration(self.baseline, self.oracle) if self.oracle else {}


def pearson(x: Tensor, y: Tensor) -> float:
    """Pearson's r of two 1-D tensors (0 when either is constant: no linear relation to measure)."""
    x, y = x - x.mean(), y - y.mean()
    norm = (x.norm() * y.norm()).item()
    return (x @ y).item() / norm if norm > 0 else 0.0


def calibration(scores: dict[str, list[float]], oracle: dict[str, list[float]]) -> dict[str, float]:
    """How well a reward model's scores of the SFT policy's k samples per prompt track the exact reward of the same
    samples:

    * ``prompt_corr``: Pearson's r over prompts of the two per-prompt means, i.e. of the contrastive baseline and
      the prompt's true difficulty (the offset arXiv 2403.07708 subtracts; 1: the offset is the true difficulty);
    * ``sample_corr``: r over all samples of the raw scores (how good the reward model is at all);
    * ``contrastive_sample_corr``: r over all samples of the scores minus their prompt's mean, each reward its own
      (what PPO is left to learn from once the offset is removed).
    """
    ids = sorted(set(scores) & set(oracle))
    model = torch.tensor([scores[i] for i in ids], dtype=torch.float64)  # (P, k)
    exact = torch.tensor([oracle[i] for i in ids], dtype=torch.float64)
    return {"prompt_corr": pearson(model.mean(1), exact.mean(1)),
            "sample_corr": pearson(model.flatten(), exact.flatten()),
            "contrastive_sample_corr": pearson((model - model.mean(1, keepdim=True)).flatten(),
                                               (exact - exact.mean(1, keepdim=True)).flatten())}
