"""Contrastive rewards (reward=contrastive): r − the per-prompt mean of k cached SFT samples, a cache that is rebuilt
when the policy or the reward model changes, and k < 1 refused."""

from __future__ import annotations

import json

import pytest
import pytorch_lightning as pl
import torch

from vlmalign.data.shapes import CAPTION_PROMPTS, world_spec
from vlmalign.data.shapes_prompts import ShapesPromptDataModule, ShapesPromptDataset
from vlmalign.errors import ConfigError
from vlmalign.models import load_backbone
from vlmalign.models.reward_model import RewardModel, save_reward_model
from vlmalign.objectives import Objective, PolicyGradientTerm
from vlmalign.reference import FrozenCopyReference
from vlmalign.rl.contrastive import BASELINE_FILE, ContrastiveReward, baseline_step, calibration
from vlmalign.rl.online_module import OnlineRLModule
from vlmalign.rl.rewards import ModelReward, RewardFunction, SceneReward, scene_reward
from vlmalign.rl.rollout import RolloutSettings, collect_rollout

WORLD = {"image_size": 32}
SETTINGS = RolloutSettings(group_size=2, max_new_tokens=6, seed=3)
DATA = {"task": "prompts-test"}


class LengthReward(RewardFunction):
    """A toy reward: the response's length in tokens; counts how many responses it scored."""

    name = "length"

    def __init__(self) -> None:
        self.scored = 0

    def __call__(self, rollout):
        self.scored += len(rollout.responses)
        return torch.tensor([float(len(r)) for r in rollout.responses])


def _prompts(count: int):
    dataset = ShapesPromptDataset("train", count, world_spec(WORLD), CAPTION_PROMPTS[0])
    return [dataset[i] for i in range(count)]


def test_contrastive_reward_is_the_reward_minus_the_per_prompt_mean_of_k_cached_samples(tiny_checkpoint, tmp_path):
    policy = load_backbone(str(tiny_checkpoint))
    prompts = _prompts(3)
    reward = ContrastiveReward(LengthReward(), k=3, cache_dir=str(tmp_path))
    directory = reward.prepare(policy, prompts, DATA, SETTINGS)
    cached = json.loads((directory / BASELINE_FILE).read_text())["scores"]
    assert sorted(cached) == sorted(p.sample_id for p in prompts) and all(len(v) == 3 for v in cached.values())
    rollout = collect_rollout(policy, prompts, SETTINGS, step=11)
    expected = [len(ids) - sum(cached[rollout.prompt_of(row).sample_id]) / 3
                for row, ids in enumerate(rollout.responses)]
    assert reward(rollout).tolist() == pytest.approx(expected)


def test_the_offline_pass_scores_its_samples_with_the_scene_too_and_reports_the_calibration(tiny_checkpoint, tmp_path):
    # the same samples, scored by the exact scene reward: the oracle of the baseline's difficulty calibration
    policy = load_backbone(str(tiny_checkpoint))
    prompts = _prompts(4)
    reward = ContrastiveReward(LengthReward(), k=2, cache_dir=str(tmp_path))
    reward.prepare(policy, prompts, DATA, SETTINGS)
    rollout = collect_rollout(policy, prompts, SETTINGS, step=baseline_step(0))  # k = group_size = 2: the pass's draws
    assert reward.oracle == {p.sample_id: [scene_reward(p.scene, rollout.texts[2 * i + j]) for j in range(2)]
                             for i, p in enumerate(prompts)}
    assert set(reward.report()) == {"prompt_corr", "sample_corr", "contrastive_sample_corr"}


def test_calibration_by_hand():
    # prompt means: model (1, 3, 5), exact (0, 1, 2): perfectly linear -> prompt_corr 1; within-prompt deviations
    # model (-1, 1) each, exact (+1, -1) each: perfectly anti-aligned -> contrastive_sample_corr -1
    scores = {"a": [0.0, 2.0], "b": [2.0, 4.0], "c": [4.0, 6.0]}
    exact = {"a": [1.0, -1.0], "b": [2.0, 0.0], "c": [3.0, 1.0]}
    report = calibration(scores, exact)
    assert report["prompt_corr"] == pytest.approx(1.0)
    assert report["contrastive_sample_corr"] == pytest.approx(-1.0)
    model, oracle = [0, 2, 2, 4, 4, 6], [1, -1, 2, 0, 3, 1]  # r over the six samples, by the textbook formula
    mx, my = sum(model) / 6, sum(oracle) / 6
    cov = sum((a - mx) * (b - my) for a, b in zip(model, oracle))
    var = (sum((a - mx) ** 2 for a in model) * sum((b - my) ** 2 for b in oracle)) ** 0.5
    assert report["sample_corr"] == pytest.approx(cov / var)
    assert calibration({"a": [1.0, 1.0]}, {"a": [0.0, 2.0]})["prompt_corr"] == 0.0  # one prompt: no spread


def test_the_baseline_cache_is_reused_and_rebuilt_when_the_policy_changes(tiny_checkpoint, tmp_path):
    policy = load_backbone(str(tiny_checkpoint))
    prompts = _prompts(2)
    base = LengthReward()
    reward = ContrastiveReward(base, k=2, cache_dir=str(tmp_path))
    first = reward.prepare(policy, prompts, DATA, SETTINGS)
    assert base.scored == 4
    assert reward.prepare(policy, prompts, DATA, SETTINGS) == first and base.scored == 4  # reused: nothing sampled
    assert reward.prepare(policy, prompts, DATA, RolloutSettings(temperature=0.7, max_new_tokens=6, seed=3)) != first
    parameter = next(policy.parameters())
    original = parameter.detach().clone()
    with torch.no_grad():
        parameter.add_(0.01)  # another policy
    assert reward.prepare(policy, prompts, DATA, SETTINGS) != first
    (first / BASELINE_FILE).write_text((first / BASELINE_FILE).read_text().replace("[", "[9", 1))  # corrupted
    scored = base.scored
    with torch.no_grad():
        parameter.copy_(original)  # the first policy again, whose cache is now corrupted
    assert reward.prepare(policy, prompts, DATA, SETTINGS) == first and base.scored == scored + 4  # rebuilt


def test_the_baseline_cache_is_rebuilt_when_the_reward_model_changes(tiny_checkpoint, tmp_path):
    policy = load_backbone(str(tiny_checkpoint))
    for seed in (1, 2):
        save_reward_model(RewardModel(load_backbone(str(tiny_checkpoint)), seed=seed), tmp_path / f"rm{seed}")
    directories = [ContrastiveReward(ModelReward(str(tmp_path / f"rm{seed}")), k=2, cache_dir=str(tmp_path / "c"))
                   .prepare(policy, _prompts(2), DATA, SETTINGS) for seed in (1, 2)]
    assert directories[0] != directories[1]
    baselines = [json.loads((d / BASELINE_FILE).read_text())["scores"] for d in directories]
    assert baselines[0] != baselines[1]  # the same samples (same policy and seed), scored by another model


def test_k_below_one_and_a_nested_contrastive_reward_are_refused():
    with pytest.raises(ConfigError, match=r"reward.k=0 must be an integer >= 1"):
        ContrastiveReward(SceneReward(), k=0)
    with pytest.raises(ConfigError, match="reward.base"):
        ContrastiveReward(ContrastiveReward(SceneReward()), k=2)


def test_grpo_on_contrastive_scene_rewards_end_to_end(tiny_checkpoint, tmp_path):
    torch.manual_seed(0)
    backbone = load_backbone(str(tiny_checkpoint))
    reward = ContrastiveReward(SceneReward(), k=2, cache_dir=str(tmp_path))
    objective = Objective({"policy_gradient": PolicyGradientTerm(group_size=2, kl_coef=0.05)})
    module = OnlineRLModule(backbone, objective, reward, RolloutSettings(group_size=2, max_new_tokens=6),
                            optimizer=lambda p: torch.optim.Adam(p, lr=1e-3), reference=FrozenCopyReference())
    datamodule = ShapesPromptDataModule(batch_size=4, group_size=2, num_train_scenes=4, num_val_scenes=1, world=WORLD)
    module.prepare_rewards(datamodule)
    assert len(reward.baseline) == 5  # every train and val prompt
    trainer = pl.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(module, train_dataloaders=datamodule.train_dataloader())
    assert trainer.global_step == 2 and torch.isfinite(trainer.callback_metrics["train/reward"])
