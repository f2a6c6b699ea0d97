"""DeepSpeed strategies without a GPU: the generated configs, the config checks, plugins and checkpoint checks.

Only configs are composed and objects built (no model, no process group): seconds.
"""

from __future__ import annotations

import re

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tests.hydra_utils import compose_train
from vlmalign.distributed import deepspeed_config, zero_stage
from vlmalign.distributed.checks import deepspeed_stage
from vlmalign.distributed.run import checkpoint_plugins, deepspeed_checkpoint_problem, strategy_stage
from vlmalign.errors import ConfigError
from vlmalign.reliability.checkpoint_io import AtomicCheckpointIO, checkpoint_problem
from vlmalign.utils.instantiate import build
from vlmalign.validation import validate_run_config

STRATEGIES = {"deepspeed_zero2": 2, "deepspeed_zero3": 3, "deepspeed_zero3_offload": 3}


def compose(overrides, tmp_path):
    return compose_train(overrides, tmp_path)


def validate(overrides, tmp_path):
    cfg = compose(overrides, tmp_path)
    validate_run_config(cfg, build(cfg.objective, "objective"))


def raises(*patterns: str):
    return pytest.raises(ConfigError, match="(?s)" + "".join(f"(?=.*{re.escape(p)})" for p in patterns))


@pytest.mark.parametrize("option", sorted(STRATEGIES))
def test_strategy_yaml_builds_lightnings_deepspeed_strategy_with_the_generated_config(option, tmp_path):
    from pytorch_lightning.strategies import DeepSpeedStrategy

    cfg = compose(["trainer=gpu", f"strategy={option}"], tmp_path)
    node = cfg.trainer.strategy
    assert node._target_ == "pytorch_lightning.strategies.DeepSpeedStrategy"
    assert deepspeed_stage(node) == STRATEGIES[option] == strategy_stage(cfg)
    strategy = instantiate(node)  # constructing it needs no GPU; fitting does
    assert isinstance(strategy, DeepSpeedStrategy)
    config = strategy.config
    assert config == instantiate(node.config)  # what DeepSpeed gets is exactly the builder's output
    assert zero_stage(config) == STRATEGIES[option]
    assert config["bf16"] == {"enabled": True} and config["fp16"] == {"enabled": False}
    assert config["gradient_clipping"] == cfg.trainer.gradient_clip_val == 1.0
    assert config["zero_allow_untested_optimizer"] is True
    assert "gradient_accumulation_steps" not in config  # Lightning sets it from trainer.accumulate_grad_batches
    zero = config["zero_optimization"]
    assert zero["reduce_bucket_size"] == 200_000_000
    offload = option.endswith("offload")
    assert ("offload_optimizer" in zero) == offload and ("offload_param" in zero) == offload
    assert config.get("zero_force_ds_cpu_optimizer", True) is (not offload)
    if STRATEGIES[option] == 2:
        assert zero["allgather_bucket_size"] == 200_000_000 and "stage3_prefetch_bucket_size" not in zero
    else:
        assert zero["stage3_gather_16bit_weights_on_model_save"] is True and "allgather_bucket_size" not in zero
    assert cfg.distributed.zero3_init is False


def test_config_values_come_from_the_trainer(tmp_path):
    cfg = compose(["trainer=gpu", "strategy=deepspeed_zero3", "trainer.gradient_clip_val=0.3"], tmp_path)
    assert instantiate(cfg.trainer.strategy.config)["gradient_clipping"] == 0.3
    cfg = compose(["trainer=gpu", "strategy=deepspeed_zero2", "trainer.gradient_clip_val=null"], tmp_path)
    assert instantiate(cfg.trainer.strategy.config)["gradient_clipping"] == 0.0
    assert deepspeed_config(2, precision="32-true")["bf16"] == {"enabled": False}


def test_builder_refuses_impossible_settings():
    with raises("stage=4", "choose 1, 2 or 3"):
        deepspeed_config(4)
    with raises("offload_params=true needs ZeRO stage 3"):
        deepspeed_config(2, offload_params=True)
    with raises("trainer.precision='fp8'"):
        deepspeed_config(3, precision="fp8")


@pytest.mark.parametrize("option", sorted(STRATEGIES))
def test_deepspeed_on_the_cpu_trainer_names_the_fix(option, tmp_path):
    with raises("is DeepSpeed but trainer.accelerator=cpu", "trainer=gpu"):
        validate([f"strategy={option}"], tmp_path)
    validate(["trainer=gpu", f"strategy={option}"], tmp_path)  # the default job (mDPO, reference=frozen) passes
    validate(["trainer=gpu_multinode", f"strategy={option}"], tmp_path)


def test_deepspeed_needs_bf16(tmp_path):
    with raises("trainer.precision=32-true", "bf16-mixed"):
        validate(["trainer=gpu", "strategy=deepspeed_zero2", "trainer.precision=32-true"], tmp_path)


def test_zero3_init_rules(tmp_path):
    with raises("distributed.zero3_init=true", "reference=frozen", "reference=lora_disabled", "reference=precomputed"):
        validate(["trainer=gpu", "strategy=deepspeed_zero3", "distributed.zero3_init=true"], tmp_path)
    with raises("only ZeRO stage 3"):
        validate(["trainer=gpu", "strategy=deepspeed_zero2", "distributed.zero3_init=true",
                  "reference=precomputed"], tmp_path)
    validate(["trainer=gpu", "strategy=deepspeed_zero3", "distributed.zero3_init=true", "reference=precomputed"],
             tmp_path)
    validate(["trainer=gpu", "strategy=deepspeed_zero3", "distributed.zero3_init=true", "reference=lora_disabled",
              "model=tiny_llava_lora"], tmp_path)


def test_lightning_registry_names_and_plain_configs_are_read_too(tmp_path):
    assert deepspeed_stage("deepspeed_stage_3_offload") == 3 and deepspeed_stage("deepspeed") == 2
    assert deepspeed_stage("ddp") is None and deepspeed_stage(None) is None
    node = OmegaConf.create({"_target_": "pytorch_lightning.strategies.DeepSpeedStrategy",
                             "config": {"zero_optimization": {"stage": 1}}})
    assert deepspeed_stage(node) == 1
    with raises("trainer.accelerator=cpu"):
        validate(["trainer.strategy=deepspeed_stage_3"], tmp_path)


def test_multinode_trainer_preset(tmp_path):
    cfg = compose(["trainer=gpu_multinode", "strategy=deepspeed_zero3", "trainer.num_nodes=4"], tmp_path)
    assert cfg.trainer.num_nodes == 4 and cfg.trainer.devices == 8
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.precision == "bf16-mixed"
    assert "plugins" not in cfg.trainer and "cluster_environment" not in cfg.trainer.strategy  # Lightning detects it


def test_no_checkpoint_io_plugin_under_deepspeed(tmp_path):
    plugin = AtomicCheckpointIO()
    assert checkpoint_plugins(compose([], tmp_path), [plugin]) == [plugin]
    assert checkpoint_plugins(compose(["strategy=ddp"], tmp_path), [plugin]) == [plugin]
    assert checkpoint_plugins(compose(["trainer=gpu", "strategy=deepspeed_zero2"], tmp_path), [plugin]) == []


def test_deepspeed_checkpoint_directory_checks(tmp_path):
    ckpt = tmp_path / "last.ckpt"
    ckpt.mkdir()
    assert "no 'latest' tag file" in deepspeed_checkpoint_problem(ckpt)
    (ckpt / "latest").write_text("checkpoint")
    (ckpt / "checkpoint").mkdir()
    assert "mp_rank_00_model_states.pt" in checkpoint_problem(ckpt)  # the resume path routes directories here
    (ckpt / "checkpoint" / "mp_rank_00_model_states.pt").write_bytes(b"x")
    assert "optimizer shards" in deepspeed_checkpoint_problem(ckpt)
    (ckpt / "checkpoint" / "zero_pp_rank_0_mp_rank_00_optim_states.pt").write_bytes(b"x")
    assert deepspeed_checkpoint_problem(ckpt) is None and checkpoint_problem(ckpt) is None
    assert "not a DeepSpeed checkpoint directory" in deepspeed_checkpoint_problem(tmp_path / "missing")
