"""Every option of every config group composes and instantiates; bad config gives clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from tests.hydra_utils import CONF, compose_train, group_options
from vlmalign.errors import ConfigError
from vlmalign.optim import build_optimizer_factory
from vlmalign.utils.instantiate import build

GROUPS = ["model", "data", "objective", "reference", "corruption", "base", "optimizer", "scheduler", "trainer",
          "strategy", "logger",
          "callbacks", "eval", "paths", "experiment", "hparams_search", "rollout", "reward"]
DATA_OBJECTIVE = {"shapes": "sft", "shapes_nsft": "nsft", "shapes_claims": "sft", "shapes_unpaired": "kto",
                  "shapes_prompts": "grpo"}
PROMPT_DATA = ("shapes_prompts",)  # prompts only: online RL samples the responses
# data options that read a file the user names (the required key): built on fixtures in their own tests
USER_FILE_DATA = {**dict.fromkeys(("rlaif_v", "vlfeedback", "mdpo_json", "trl_preference", "llava_sft",
                                   "local_preference", "kto_unpaired", "trl_unpaired"), "train_file"),
                  "rlaifv_pairs": "pairs_file",
                  "synth2_mix": "generator_path"}  # a generator checkpoint: built in tests/synth2


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def processor(cache_dir, tmp_path_factory):
    cfg = compose_train([], tmp_path_factory.mktemp("out"), cache_dir)
    return build(cfg.model, "model").processor


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_composes_and_resolves(group, tmp_path, cache_dir):
    options = group_options(group)
    assert options, f"conf/{group}/ has no options"
    for option in options:
        extra = [f"data.{USER_FILE_DATA[option]}=unused.json"] if group == "data" and option in USER_FILE_DATA else []
        cfg = compose_train([f"{group}={option}", *extra], tmp_path, cache_dir)
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=group != "model")


def test_every_buildable_option_instantiates(tmp_path, cache_dir, processor, tiny_checkpoint):
    for option in group_options("model"):
        if option not in ("tiny_llava", "tiny_llava_lora", "hf"):
            continue  # presets of hub checkpoints: built from tiny random models in tests/model_presets
        extra = [f"model.name_or_path={tiny_checkpoint}", "model.dtype=float32"] if option == "hf" else []
        cfg = compose_train([f"model={option}", *extra], tmp_path, cache_dir)
        assert build(cfg.model, "model").processor is not None
    for option in group_options("data"):
        if option in USER_FILE_DATA:
            continue  # built on fixture files in tests/data_adapters/test_configs.py and tests/rlaifv
        # each data option with an objective that uses what it has (the default, mdpo, needs preference pairs)
        objective = [f"objective={DATA_OBJECTIVE[option]}"] if option in DATA_OBJECTIVE else []
        cfg = compose_train([f"data={option}", *objective], tmp_path, cache_dir)
        views = build(cfg.objective, "objective").views
        example = build(cfg.data, "data", processor=processor, views=views).train_set[0]
        assert example.prompt if option in PROMPT_DATA else example.prompt_ids
    for option in group_options("objective"):
        assert build(compose_train([f"objective={option}"], tmp_path, cache_dir).objective, "objective").views
    for group in ("reference", "optimizer", "scheduler", "eval", "corruption", "rollout"):
        for option in group_options(group):
            assert build(compose_train([f"{group}={option}"], tmp_path, cache_dir)[group], group) is not None
    for option in group_options("logger"):
        for name, node in (compose_train([f"logger={option}"], tmp_path, cache_dir).logger or {}).items():
            assert build(node, f"logger.{name}") is not None
    for option in group_options("callbacks"):
        for name, node in (compose_train([f"callbacks={option}"], tmp_path, cache_dir).callbacks or {}).items():
            assert build(node, f"callbacks.{name}") is not None
    for option in group_options("strategy"):
        cfg = compose_train([f"strategy={option}", "trainer.devices=1"], tmp_path, cache_dir)
        assert build(cfg.trainer, "trainer", logger=False).max_steps == cfg.trainer.max_steps
    gpu = compose_train(["trainer=gpu"], tmp_path, cache_dir).trainer
    assert gpu.accelerator == "gpu" and gpu.precision == "bf16-mixed"  # instantiating needs a GPU


def test_unknown_option_names_the_group_and_alternatives(tmp_path):
    with pytest.raises(MissingConfigException, match="objective/nonsense"):
        compose_train(["objective=nonsense"], tmp_path)


def test_missing_key_is_named(tmp_path, cache_dir):
    cfg = compose_train(["model=hf"], tmp_path, cache_dir)
    with pytest.raises(ConfigError, match=r"model\.name_or_path"):
        build(cfg.model, "model")


def test_bad_values_are_named(tmp_path, cache_dir, processor):
    cfg = compose_train(["model.image_size=60"], tmp_path, cache_dir)
    with pytest.raises(ConfigError, match=r"model.image_size=60 is not divisible by model.patch_size=32"):
        build(cfg.model, "model")
    cfg = compose_train(["world.image_size=8"], tmp_path, cache_dir)
    with pytest.raises(ConfigError, match=r"world: image_size=8 is out of range"):
        build(cfg.data, "data", processor=processor)
    cfg = compose_train(["+model.vision_widht=3"], tmp_path, cache_dir)
    with pytest.raises(ConfigError, match="vision_widht"):
        build(cfg.model, "model")
    cfg = compose_train(["optimizer.lr=fast"], tmp_path, cache_dir)
    with pytest.raises(ConfigError, match="optimizer"):
        build_optimizer_factory(cfg.optimizer)


def test_cli_help_cfg_and_user_error_without_traceback(tmp_path):
    cli = [sys.executable, "-m", "vlmalign.train"]
    env = {"VLMALIGN_ROOT": str(tmp_path), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    shown = subprocess.run([*cli, "--cfg", "job", "objective=sft", "seed=7"], capture_output=True, text=True, env=env)
    assert shown.returncode == 0 and "seed: 7" in shown.stdout
    helped = subprocess.run([*cli, "--help"], capture_output=True, text=True, env=env)
    assert helped.returncode == 0
    assert "objective: " + ", ".join(group_options("objective")) in helped.stdout  # every option, as Hydra lists them
    assert "reference: frozen, lora_disabled, none, precomputed" in helped.stdout
    failed = subprocess.run([*cli, "experiment=sft_shapes", "world.image_size=8"],
                            capture_output=True, text=True,
                            env={**env, "VLMALIGN_CACHE": str(tmp_path / "cache")})
    assert failed.returncode == 2
    assert "world: image_size=8 is out of range" in failed.stderr and "Traceback" not in failed.stderr


def test_conf_dir_is_the_one_train_uses():
    from vlmalign.utils.compose import CONFIG_DIR

    assert CONF.samefile(CONFIG_DIR)


@pytest.mark.parametrize("extra, expected", [([], 1), (["+eval.pope_max_new_tokens=48"], 48)])
def test_validation_reads_pope_replies_like_the_final_evaluation(tmp_path, extra, expected):
    """A describe-first model's POPE replies need room during validation too, or its curve reads "unanswered"."""
    cfg = compose_train(extra, tmp_path, tmp_path / "cache")
    callback = build(cfg.callbacks.hallucination_eval, "callbacks.hallucination_eval")
    assert callback.evaluator.pope_max_new_tokens == expected
    assert build(cfg.eval, "eval").pope_max_new_tokens == expected
