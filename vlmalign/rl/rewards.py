"""Reward functions of online RL (``reward=scene`` or ``reward=model``): one score per sampled response.

- ``SceneReward``: the shapes world's exact reward, covered − hallucinated objects, from the same caption parser
  and matching as CHAIR and Cover (``vlmalign.eval.hallucination.score_caption``): the oracle, and the noise-free
  upper bound a learned reward model is compared with.
- ``ModelReward``: a trained reward model (``objective=reward_model``) loaded by path; it reads the policy's token
  ids as they are, so it must be of the policy's family and tokenizer, checked before any rollout.
- ``ContrastiveReward`` (``vlmalign.rl.contrastive``): either of them minus a per-prompt baseline of k samples.

``prepare`` runs once before training with the starting policy and the prompts (the contrastive baseline's offline
pass); the plain rewards need nothing.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from vlmalign.data.shapes import Scene
from vlmalign.errors import ConfigError, DataError
from vlmalign.eval.hallucination import score_caption
from vlmalign.models.backbone import VisionLanguageBackbone
from vlmalign.models.reward_model import load_reward_model, reward_model_identity, reward_model_problems
from vlmalign.objectives.policy_gradient import ROLLOUT_VIEW
from vlmalign.rl.rollout import Rollout
from vlmalign.utils.files import file_digest


def scene_reward(scene: Scene, text: str) -> float:
    """|covered scene objects| − |hallucinated mentions| of a caption: +1 per object said, −1 per object made up."""
    score = score_caption(scene, text)
    return float(len(score.covered) - len(score.hallucinated))


def scene_scores(rollout: Rollout) -> list[float] | None:
    """The exact scene reward of every response of ``rollout``, in row order; None when a prompt carries no scene
    (data other than the shapes world)."""
    if any(prompt.scene is None for prompt in rollout.prompts):
        return None
    return [scene_reward(rollout.prompt_of(row).scene, text) for row, text in enumerate(rollout.texts)]


class RewardFunction:
    """Scores (B,) of a rollout's responses, on the rollout batch's device. ``check_policy`` runs when the online
    trainer is built, before any rollout."""

    name = "base"

    def check_policy(self, policy: VisionLanguageBackbone) -> None:
        """Nothing to check by default."""

    def identity(self) -> dict:
        """What fixes this reward's numbers (a cache of its scores is keyed by it)."""
        return {"name": self.name}

    def prepare(self, policy: VisionLanguageBackbone, prompts: list, data_identity: dict, settings) -> None:
        """Nothing to prepare by default."""

    def report(self) -> dict[str, float]:
        """Numbers about the reward itself for the run's metrics.json (``reward/<name>``); none by default."""
        return {}

    def __call__(self, rollout: Rollout) -> Tensor:  # pragma: no cover
        raise NotImplementedError


class SceneReward(RewardFunction):
    name = "scene"

    def __call__(self, rollout: Rollout) -> Tensor:
        scores = scene_scores(rollout)
        if scores is None:
            unscened = next(prompt for prompt in rollout.prompts if prompt.scene is None)
            raise DataError(f"reward=scene scores captions against their scene, but prompt {unscened.sample_id!r} "
                            "has none; use data=shapes_prompts or reward=model")
        return torch.tensor(scores, device=_device(rollout))


class ModelReward(RewardFunction):
    """A saved reward model at ``path``, frozen, on the policy's device."""

    name = "model"

    def __init__(self, path: str, dtype: str = "float32") -> None:
        if not path:
            raise ConfigError("reward.path is not set: give the model/ folder of an objective=reward_model run")
        self.path, self.dtype = path, dtype
        self.saved_identity = reward_model_identity(path)  # a folder that is no reward model fails here, in seconds
        self.model = None

    def check_policy(self, policy: VisionLanguageBackbone) -> None:
        problems = reward_model_problems(self.saved_identity, policy)
        if problems:
            raise ConfigError(f"reward.path={self.path}: " + "; ".join(problems))

    def identity(self) -> dict:
        """The reward model's files by checksum: retraining it in place changes the identity."""
        files = sorted(p for p in Path(self.path).expanduser().iterdir() if p.suffix in (".safetensors", ".json"))
        return {"name": self.name, "files": {p.name: file_digest(p) for p in files}}

    def __call__(self, rollout: Rollout) -> Tensor:
        if self.model is None:
            self.model = load_reward_model(self.path, self.dtype)
        device = _device(rollout)
        self.model.to(device)
        with torch.no_grad():
            return self.model.scores(rollout.batch, (ROLLOUT_VIEW,))[ROLLOUT_VIEW].float()


def _device(rollout: Rollout):
    return rollout.batch["views"][ROLLOUT_VIEW]["input_ids"].device
