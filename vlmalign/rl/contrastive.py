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
from vlmalign.rl.rewards import RewardFunction
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
            for chunk, start in enumerate(range(0, len(prompts), PROMPTS_PER_PASS)):
                batch = prompts[start : start + PROMPTS_PER_PASS]
                rollout = collect_rollout(policy, batch, sampling, step=baseline_step(chunk))
                grouped = self.base(rollout).float().view(len(batch), self.k).tolist()
                scores.update({p.sample_id: row for p, row in zip(batch, grouped)})
            (scratch / BASELINE_FILE).write_text(json.dumps({"identity": identity, "scores": scores}) + "\n")

        directory = build_once(self.cache_dir / f"baseline-{fingerprint(identity)}", build, "contrastive baseline")
        stored = json.loads((directory / BASELINE_FILE).read_text())
        if stored["identity"] != json.loads(json.dumps(identity)):
            raise ConfigError(f"the contrastive baseline cache {directory} was computed for another policy, reward, "
                              "prompts or sampling settings; delete it")
        self.baseline.update(stored["scores"])
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
