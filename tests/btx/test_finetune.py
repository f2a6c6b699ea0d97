"""The MoE fine-tune (Branch-Train-MiX, arXiv 2403.07816, §2.3) end to end: a merged model loaded by path through
the usual backbone, a few steps of ``experiment=btx/finetune`` (SFT + load balancing), router metrics logged."""

from __future__ import annotations

import math

import pytest
from omegaconf import open_dict

from tests.hydra_utils import compose_train
from vlmalign.errors import ConfigError
from vlmalign.pipelines.btx.merge import btx_merge
from vlmalign.train import train

FEW_STEPS = ["trainer.max_steps=3", "trainer.val_check_interval=3", "trainer.log_every_n_steps=1",
             "data.num_train_scenes=12", "data.num_val_scenes=4", "data.batch_size=4", "data.max_length=80",
             "model.image_size=32", "model.patch_size=8", "eval.num_scenes=2", "eval.max_new_tokens=4",
             "eval.counter_prior_scenes=0", "eval.pope_samplings=[]", "callbacks.progress_bar=null",
             "callbacks.hallucination_eval=null"]


def test_a_few_steps_of_moe_fine_tuning_log_the_router(seed_dir, expert_dirs, tmp_path):
    merged = btx_merge(seed_dir, tmp_path / "moe", experts=expert_dirs, top_k=2)
    cfg = compose_train(["experiment=btx/finetune", f"model.init_from={merged}", *FEW_STEPS], tmp_path / "run",
                        tmp_path / "cache")
    metrics = train(cfg)
    assert 0.0 <= metrics["test/chair_i"] <= 1.0
    header, *rows = (tmp_path / "run" / "csv" / "metrics.csv").read_text().splitlines()
    columns = header.split(",")
    for name in ["train/loss/sft", "train/loss/load_balancing",
                 "train/router/layer1/load_expert2", "train/router/layer0/entropy", "train/router/layer1/dropped",
                 "val/router/layer0/entropy"]:
        assert name in columns, name
    balance = [float(v) for row in rows if (v := row.split(",")[columns.index("train/loss/load_balancing")])]
    assert len(balance) == 3 and all(math.isfinite(v) and v > 0 for v in balance)
    assert (tmp_path / "run" / "model" / "config.json").is_file()


def test_a_dense_model_with_the_balance_term_is_refused_before_training(seed_dir, tmp_path):
    cfg = compose_train(["experiment=btx/finetune", f"model.init_from={seed_dir}", *FEW_STEPS], tmp_path / "run",
                        tmp_path / "cache")
    with open_dict(cfg):
        cfg.evaluate_initial = False
    with pytest.raises(ConfigError, match="needs router logits but model .* has no MoE layers"):
        train(cfg)
