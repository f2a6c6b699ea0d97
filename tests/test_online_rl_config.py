"""objective=grpo / rloo / reinforce_pp / reward_model through the real conf/ tree: they compose, build through the
one instantiate path, and every bad input is one ConfigError before any model is built or any rollout runs."""

from __future__ import annotations

import json

import pytest

from tests.hydra_utils import compose_train
from vlmalign.errors import ConfigError
from vlmalign.job import build_module
from vlmalign.models import load_backbone
from vlmalign.rl.online_module import OnlineRLModule
from vlmalign.rl.reward_module import RewardModelModule
from vlmalign.rl.rewards import SceneReward
from vlmalign.rl.rollout import RolloutSettings
from vlmalign.utils.instantiate import build
from vlmalign.validation import validate_run_config


def _checked(tmp_path, *overrides):
    cfg = compose_train(list(overrides), tmp_path / "run", tmp_path / "cache")
    objective = build(cfg.objective, "objective")
    validate_run_config(cfg, objective)
    return cfg, objective


@pytest.mark.parametrize("option,advantage", [("grpo", "grpo"), ("rloo", "rloo"), ("reinforce_pp", "reinforce_pp"),
                                              ("ppo", "gae")])
def test_online_objectives_bring_their_prompts_sampler_and_reward(option, advantage, tmp_path):
    cfg, objective = _checked(tmp_path, f"objective={option}")
    term = objective.terms["policy_gradient"]
    assert objective.online and term.advantage == advantage and term.group_size == cfg.rollout.group_size
    assert cfg.data._target_.endswith("ShapesPromptDataModule") and cfg.data.group_size == cfg.rollout.group_size
    assert isinstance(build(cfg.reward, "reward"), SceneReward)
    assert build(cfg.rollout, "rollout") == RolloutSettings(seed=cfg.seed)


def test_the_job_builds_the_online_trainer_and_the_reward_model_module(tmp_path, tiny_checkpoint):
    backbone = load_backbone(str(tiny_checkpoint))
    cfg, objective = _checked(tmp_path, "objective=grpo", "trainer.gradient_clip_val=0.5")
    module = build_module(cfg, backbone, objective)
    assert isinstance(module, OnlineRLModule) and module.max_grad_norm == 0.5
    assert module.reference.name == "frozen"
    cfg, objective = _checked(tmp_path, "objective=reward_model", "objective.terms.bradley_terry.label_noise=0.2")
    module = build_module(cfg, backbone, objective)
    assert isinstance(module, RewardModelModule) and module.term.label_noise == 0.2
    assert module.reward_model.head.weight.shape == (1, backbone.hidden_size)
    assert module.reference.name == "none"  # a reward model run builds no reference policy


@pytest.mark.parametrize("overrides,message", [
    (["data.batch_size=6"], r"data.batch_size=6 responses per step is not a multiple of rollout.group_size=4"),
    (["reference=none"], r"need a per-token KL to the reference"),
    (["reference=precomputed"], r"reference=precomputed caches log-probs of a dataset's responses"),
    (["reward=model"], r"the reward model needs reward.path"),
    (["reward=contrastive"], r"the reward model needs reward.base.path"),
    (["reward=contrastive_scene", "reward.k=0"], r"reward.k=0 must be an integer >= 1"),
    (["data=shapes_preference"], r"need views \['rollout'\]"),
])
def test_bad_online_config_is_one_clear_error_before_anything_is_built(overrides, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        _checked(tmp_path, "objective=grpo", *overrides)


def test_a_group_estimator_needs_two_samples_and_reinforce_pp_and_ppo_do_not(tmp_path):
    with pytest.raises(ConfigError, match=r"group_size=1: advantage=grpo needs at least 2"):
        _checked(tmp_path, "objective=grpo", "rollout.group_size=1")
    for option in ("reinforce_pp", "ppo"):
        _checked(tmp_path, f"objective={option}", "rollout.group_size=1", "data.batch_size=3")


def test_a_reward_path_that_is_no_reward_model_is_refused_by_the_config_check(tmp_path, tiny_checkpoint):
    with pytest.raises(ConfigError, match="not a reward model"):
        _checked(tmp_path, "objective=grpo", "reward=model", f"reward.path={tiny_checkpoint}")


def test_reward_model_objective_composes_without_reference_or_caption_evaluation(tmp_path):
    cfg, objective = _checked(tmp_path, "objective=reward_model")
    assert objective.reads_rewards and objective.views == ("chosen", "rejected")
    with pytest.raises(ConfigError, match="label_noise=1.5"):
        _checked(tmp_path, "objective=reward_model", "objective.terms.bradley_terry.label_noise=1.5")


SMALL_RUN = ["~base", "model.tower_pretraining_steps=0", "model.vision_hidden=32", "model.vision_layers=1",
             "model.vision_heads=2", "model.text_hidden=32", "model.text_layers=1", "model.text_heads=2",
             "trainer.max_steps=2", "trainer.val_check_interval=2", "trainer.log_every_n_steps=1",
             "data.num_train_scenes=8", "data.num_val_scenes=2", "data.batch_size=4", "eval.num_scenes=2",
             "eval.max_new_tokens=4", "eval.pope_samplings=[random]", "callbacks=none", "scheduler.num_warmup_steps=0",
             "evaluate_initial=false"]


def _columns(run) -> set[str]:
    return set((run / "csv" / "metrics.csv").read_text().splitlines()[0].split(","))


def test_a_reward_model_run_then_grpo_on_its_model_through_vlmalign_train(tmp_path):
    """The real entry point: a reward model trained with label noise, exported with its head, then a GRPO run
    that loads it by path (gradient clipping moved into the manual-optimisation trainer) and is evaluated."""
    from vlmalign.train import train

    cache = tmp_path / "cache"
    train(compose_train([*SMALL_RUN, "objective=reward_model", "objective.terms.bradley_terry.label_noise=0.25"],
                        tmp_path / "rm", cache))
    assert {"reward_head.safetensors", "reward_model.json", "config.json"} <= {
        p.name for p in (tmp_path / "rm" / "model").iterdir()}
    assert {"train/rewards/accuracies", "val/rewards/accuracies", "val/rewards/margins"} <= _columns(tmp_path / "rm")
    metrics = train(compose_train([*SMALL_RUN, "objective=grpo", "rollout.group_size=2", "rollout.max_new_tokens=6",
                                   "reward=model", f"reward.path={tmp_path / 'rm' / 'model'}"], tmp_path / "grpo",
                                  cache))
    assert "test/chair_i" in metrics and "test/cover" in metrics  # the policy is scored like every other run
    assert {"train/reward", "train/kl", "train/policy/clip_fraction", "val/reward"} <= _columns(tmp_path / "grpo")
    rows = [json.loads(line) for line in (tmp_path / "grpo" / "rollouts.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2  # the two val prompts × group size 2, at the one validation
    assert set(rows[0]) == {"step", "sample_id", "response", "reward", "tokens", "logp"} and rows[0]["logp"] < 0


def test_a_resumed_grpo_run_ends_with_the_uninterrupted_runs_weights(tmp_path):
    """Rollouts are seeded by the step and the data order resumes by it: 2 steps + 2 resumed = 4 straight, bit for bit
    (a constant schedule, as an interrupted run keeps the straight run's schedule; here the first half is its own
    run)."""
    from vlmalign.train import train

    run = [*SMALL_RUN, "objective=grpo", "rollout.group_size=2", "rollout.max_new_tokens=6", "scheduler=constant",
           "trainer.val_check_interval=100", "callbacks.model_checkpoint.every_n_train_steps=2"]
    run = [o for o in run if o != "callbacks=none"] + ["callbacks.progress_bar=null",
                                                        "callbacks.hallucination_eval=null"]
    cache = tmp_path / "cache"
    train(compose_train([*run, "trainer.max_steps=4"], tmp_path / "straight", cache))
    train(compose_train([*run, "trainer.max_steps=2"], tmp_path / "first", cache))
    checkpoint = tmp_path / "first" / "checkpoints" / "last.ckpt"
    train(compose_train([*run, "trainer.max_steps=4", f"ckpt_path={checkpoint}"], tmp_path / "resumed", cache))
    weights = {name: (tmp_path / name / "model" / "model.safetensors").read_bytes()
               for name in ("straight", "first", "resumed")}
    assert weights["resumed"] == weights["straight"] != weights["first"]
