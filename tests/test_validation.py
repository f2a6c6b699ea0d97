"""Config validation: bad combinations fail before any training, all problems at once; shipped ones pass.

Only configs are composed and objectives built (no model, no data): these tests take seconds.
"""

from __future__ import annotations

import re

import pytest

from tests.hydra_utils import CONF, group_options
from vlmalign.errors import ConfigError
from vlmalign.objectives import ConditionalTerm, DPOTerm, Objective, SFTTerm, TokenKLTerm
from vlmalign.reference import FrozenCopyReference, NoReference, PrecomputedReference
from vlmalign.utils.compose import compose_train
from vlmalign.utils.instantiate import build
from vlmalign.validation import validate_run_config

# Each reference option with an objective it serves (a new option must be added here).
REFERENCE_SETUP = {
    "frozen": [],
    "lora_disabled": ["model=tiny_llava_lora"],
    "none": ["objective=sft"],
    "precomputed": [],
}
# The groups not covered by the objective and reference tests below: each of their options passes with the
# defaults, except these data options, which hold other examples than mDPO's and need a matching objective.
GROUPS = ["model", "world", "data", "corruption", "base", "optimizer", "scheduler", "trainer", "strategy", "logger",
          "callbacks", "eval", "paths", "experiment", "hparams_search", "rollout"]
REWARDS = ["reward"]  # options that name a trained reward model: validated in tests/test_online_rl_config.py
OTHER_APPS = ["benchmark", "labeler", "splitter"]  # groups of conf/evaluate.yaml and conf/rlaifv.yaml, not train.yaml
NESTED = ["captions"]  # groups a data option pulls in (conf/data/synth2_mix.yaml), built in tests/synth2
SYNTH2 = ["data=synth2_mix", "data.generator_path=generator"]
PAIRED = {("data", "shapes"): ["objective=sft"], ("data", "shapes_nsft"): ["objective=nsft"],
          ("data", "shapes_claims"): ["objective=sft"], ("data", "rlaifv_pairs"): ["data.pairs_file=pairs.jsonl"],
          ("data", "shapes_unpaired"): ["objective=kto"], ("data", "shapes_prompts"): ["objective=grpo"],
          ("rollout", "default"): ["objective=grpo"],
          **{("data", d): ["objective=kto", "data.train_file=train.json"] for d in ("kto_unpaired", "trl_unpaired")},
          ("data", "llava_sft"): ["objective=sft", "data.train_file=train.json"],
          ("data", "synth2_mix"): ["objective=synth2", "data.generator_path=generator"],
          **{("data", d): ["data.train_file=train.json"]
             for d in ("rlaif_v", "vlfeedback", "mdpo_json", "trl_preference", "local_preference")},
          **{("strategy", s): ["trainer=gpu"] for s in ("deepspeed_zero2", "deepspeed_zero3",
                                                       "deepspeed_zero3_offload")}}
ZERO3 = "trainer.strategy={_target_:pytorch_lightning.strategies.DeepSpeedStrategy,stage:3}"


def validate(overrides: list[str]) -> None:
    cfg = compose_train(overrides)
    validate_run_config(cfg, build(cfg.objective, "objective"), read_data=False)  # data files: the last tests


def raises(*patterns: str):
    """pytest.raises(ConfigError) whose message contains every pattern (literal text, not regexes)."""
    return pytest.raises(ConfigError, match="(?s)" + "".join(f"(?=.*{re.escape(p)})" for p in patterns))


# --- every combination the repo ships as valid passes ---------------------------------------------------------

@pytest.mark.parametrize("overrides", [[], ["experiment=sft_shapes"], ["experiment=shapes_quick"],
                                       ["trainer.max_steps=-1", "trainer.max_epochs=2"],
                                       ["trainer.val_check_interval=0.5"], ["model=hf"]])
def test_shipped_jobs_pass(overrides):
    validate(overrides)


@pytest.mark.parametrize("objective", group_options("objective"))
def test_every_objective_passes_with_the_reference_and_data_it_needs(objective):
    built = build(compose_train([f"objective={objective}"]).objective, "objective")
    data = ["data=shapes_nsft"] if "negatives" in built.views else SYNTH2 if "synthetic" in built.views else \
        ["data=shapes_unpaired"] if "desirable" in built.views else []
    validate([f"objective={objective}", *data])  # with the default reference=frozen, which serves every objective
    if not built.needs_reference and not built.token_kl_views:
        validate([f"objective={objective}", *data, "reference=none"])


def test_every_reference_passes_with_an_objective_it_serves():
    assert sorted(REFERENCE_SETUP) == group_options("reference"), "add the new reference option to REFERENCE_SETUP"
    for reference, overrides in REFERENCE_SETUP.items():
        validate([f"reference={reference}", *overrides])


def test_every_option_of_every_group_passes_with_the_defaults():
    groups = sorted(p.name for p in CONF.iterdir() if p.is_dir())
    assert sorted([*GROUPS, *OTHER_APPS, *NESTED, *REWARDS, "objective", "reference", "hydra"]) == groups, \
        "a new config group: add it to GROUPS"
    for group in GROUPS:
        for option in group_options(group):
            validate([f"{group}={option}", *PAIRED.get((group, option), [])])


# --- 1. the reference must serve the objective ------------------------------------------------------------------

def test_objective_needing_a_reference_with_reference_none():
    with raises("objective terms ['dpo', 'conditional', 'anchor'] need a reference policy but reference=none",
                "reference=frozen"):
        validate(["reference=none"])


def test_token_kl_with_a_reference_that_has_no_distributions():
    for reference in ("precomputed", "none"):
        with raises("objective terms ['kl'] need a per-token KL", f"reference={reference} cannot give"):
            validate(["objective=nsft_kl", "data=shapes_nsft", f"reference={reference}"])


def test_check_serves_still_raises_on_the_instance():
    kl = Objective({"sft": SFTTerm(), "kl": TokenKLTerm()})
    dpo = Objective({"dpo": DPOTerm(), "conditional": ConditionalTerm()})
    FrozenCopyReference().check_serves(kl)
    PrecomputedReference("unused").check_serves(dpo)
    NoReference().check_serves(Objective({"sft": SFTTerm()}))
    with pytest.raises(ConfigError, match="reference=none"):
        NoReference().check_serves(dpo)
    with pytest.raises(ConfigError, match="reference=precomputed cannot give"):
        PrecomputedReference("unused").check_serves(kl)


# --- 2. the data must provide the objective's views --------------------------------------------------------------

def test_corrupted_view_without_a_corruption():
    with raises("objective terms ['conditional'] need views ['chosen_corrupted']", "data.corruption is null",
                "corruption=crop_0_20"):
        validate(["data.corruption=null"])


def test_preference_objective_on_sft_data():
    with raises("objective terms ['dpo', 'conditional'] need views ['rejected', 'chosen_corrupted']",
                "data.task=sft", "data=shapes_preference"):
        validate(["data=shapes"])


def test_views_the_data_task_does_not_have():
    with raises("objective terms ['negatives'] need views ['negatives']", "data.task=preference", "data=shapes_nsft"):
        validate(["objective=nsft", "reference=none"])


def test_unknown_data_task():
    with raises("data.task='pairs' is not one of"):
        validate(["data.task=pairs"])


def test_unresolvable_key_is_named():
    with raises("data.corruption cannot be resolved"):
        validate(["~corruption"])


# --- 3. image sizes ------------------------------------------------------------------------------------------------

def test_image_size_not_divisible_by_patch_size():
    with raises("model.image_size=60 is not divisible by model.patch_size=32"):
        validate(["model.image_size=60"])


def test_overridden_image_size_differs_from_the_model():
    with raises("world.image_size=32 differs from model.image_size=96", "model.image_size"):
        validate(["world.image_size=32"])
    validate(["world.image_size=96"])  # an override equal to the model's size is harmless


def test_world_settings_are_checked_before_anything_is_built():
    with raises("world: image_size=8 is out of range"):
        validate(["experiment=sft_shapes", "world.image_size=8"])
    with raises("world: min_objects=1, max_objects=12"):
        validate(["world.max_objects=12"])
    with raises("world: companion="):
        validate(["world.companion.circle=triangle"])


def test_the_sft_mixture_is_checked_before_the_base_is_built():
    with raises("data.existence_confusable_negatives=1.5 must be a share in [0, 1]"):
        validate(["experiment=sft_shapes", "data.existence_confusable_negatives=1.5"])
    with raises("data.caption_fraction=0.8 and existence_fraction=0.5"):
        validate(["experiment=sft_shapes", "data.caption_fraction=0.8"])
    with raises("data.existence_single_object='half' must be a share in [0, 1]"):
        validate(["experiment=sft_shapes", "data.existence_single_object=half"])


# --- 4. lora_disabled needs LoRA ------------------------------------------------------------------------------------

def test_lora_disabled_without_lora():
    with raises("reference=lora_disabled needs a LoRA policy", "model.lora.enabled=true", "model.lora.enabled=False"):
        validate(["reference=lora_disabled"])


# --- 5. DeepSpeed -----------------------------------------------------------------------------------------------------

def test_zero3_with_a_frozen_copy_reference():
    # The frozen copy is sharded by its own ZeRO-3 engine (vlmalign/distributed/zero3.py) unless the policy is built
    # as shards (distributed.zero3_init), which a deep copy cannot copy.
    validate(["trainer=gpu", ZERO3])
    validate(["trainer=gpu", "trainer.strategy=deepspeed_stage_3_offload"])
    with raises("trainer.strategy is DeepSpeed ZeRO stage 3", "reference=frozen", "reference=precomputed",
                "reference=lora_disabled"):
        validate(["trainer=gpu", ZERO3, "+distributed.zero3_init=true"])
    validate(["trainer=gpu", ZERO3, "reference=precomputed"])
    validate(["trainer=gpu", ZERO3, "reference=lora_disabled", "model=tiny_llava_lora"])
    validate(["trainer=gpu", ZERO3.replace("stage:3", "stage:2")])


def test_deepspeed_on_cpu():
    with raises("trainer.strategy is DeepSpeed but trainer.accelerator=cpu", "trainer=gpu"):
        validate(["trainer.strategy=deepspeed"])


# --- 6. trainer and batch -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides", [["trainer.max_steps=0"], ["trainer.max_steps=-1", "trainer.max_epochs=-1"],
                                       ["trainer.max_steps=1.5"]])
def test_max_steps_must_be_a_positive_int(overrides):
    with raises(overrides[0], "trainer.max_steps must be a positive number"):
        validate(overrides)


def test_val_check_interval_must_be_positive_and_may_exceed_max_steps():
    with raises("trainer.val_check_interval=0 must be >= 1"):
        validate(["trainer.val_check_interval=0"])
    validate(["trainer.val_check_interval=400"])  # short runs skip validation this way


def test_batch_size_must_be_positive():
    with raises("data.batch_size=0 must be an integer >= 1"):
        validate(["data.batch_size=0"])


# --- all problems together --------------------------------------------------------------------------------------------

def test_several_problems_are_reported_together():
    with pytest.raises(ConfigError) as error:
        validate(["reference=none", "data.corruption=null", "model.image_size=60", "world.image_size=64",
                  "trainer.val_check_interval=0", "data.batch_size=0"])
    message = str(error.value)
    assert message.startswith("6 problems in the config")
    bullets = [line for line in message.splitlines() if line.startswith("  - ")]
    assert len(bullets) == 6
    for text in ("reference=none", "data.corruption is null", "model.image_size=60 is not divisible",
                 "world.image_size=64 differs from model.image_size=60", "trainer.val_check_interval=0",
                 "data.batch_size=0"):
        assert sum(text in bullet for bullet in bullets) == 1, text


def test_negatives_max_turns_is_checked_before_anything_is_built():
    with raises("data.negatives_max_turns=0: expected null (every corrective turn) or an integer >= 1"):
        validate(["data=shapes_nsft", "objective=nsft", "reference=none", "data.negatives_max_turns=0"])
    validate(["data=shapes_nsft", "objective=nsft", "reference=none", "data.negatives_max_turns=1"])


def test_onpolicy_pairs_need_preference_data():
    with raises("data.pair_kind=onpolicy makes preference pairs"):
        validate(["data=shapes_nsft", "objective=nsft", "reference=none", "data.pair_kind=onpolicy"])
    validate(["objective=dpo", "data.pair_kind=onpolicy"])


def _pairs_with_a_missing_image(folder) -> str:
    from tests.data_adapters.schemas import save_image, write_jsonl

    save_image(folder / "a.png")
    good = {"prompt": "describe", "chosen": "a red square", "rejected": "a blue circle", "image": "a.png"}
    return str(write_jsonl(folder / "pairs.jsonl", [{**good, "id": "ok"}, {**good, "id": "gone", "image": "b.png"}]))


@pytest.mark.parametrize(("overrides", "messages"), [
    (["optimizer.lr=abc"], ["optimizer.lr='abc' must be a number"]),
    (["data=local_preference"], ["data.train_file is not set"]),
    (["data=local_preference", "data.train_file=PAIRS"], [r"pairs.jsonl: row 1 \(id gone\): image file .*b.png does "
                                                          "not exist"]),
    (["data=local_preference", "data.train_file=PAIRS", "optimizer.betas=[0.9]", "scheduler.num_warmup_steps=x"],
     ["3 problems", r"optimizer.betas=\[0.9\] must be 2 numbers", "scheduler.num_warmup_steps='x'", "b.png"]),
], ids=["lr", "no-train-file", "missing-image", "all-at-once"])
def test_mistakes_once_seen_after_the_base_build_are_reported_before_any_model_is_built(tmp_path, overrides,
                                                                                         messages):
    from tests.hydra_utils import compose_train as compose_run
    from vlmalign.train import train

    overrides = [o.replace("PAIRS", _pairs_with_a_missing_image(tmp_path)) for o in overrides]
    cfg = compose_run(overrides, tmp_path / "run", tmp_path / "cache")
    with pytest.raises(ConfigError) as caught:
        train(cfg)
    for message in messages:
        assert re.search(message, str(caught.value)), str(caught.value)
    assert not (tmp_path / "cache" / "bases").exists()  # the default job's SFT base was never started
