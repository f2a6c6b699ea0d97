"""One few-step run per objective of the preference family on the tiny model: each trains, logs its own metrics,
is evaluated, and leaves the base cached (the same tiny base as tests/test_end_to_end.py's main job)."""

from __future__ import annotations

import math

import pytest
from omegaconf import open_dict

from tests.hydra_utils import compose_train
from vlmalign.train import train

TINY_BASE = ["experiment=sft_shapes", "trainer.max_steps=3", "data.num_train_scenes=24", "data.batch_size=4",
             "eval.num_scenes=2", "eval.max_new_tokens=4", "callbacks=none", "logger=none"]
# objective → (extra overrides, metrics its term logs every training step)
RUNS = {
    "kto": (["data=shapes_unpaired"], ["train/kl", "train/kto/desirable_fraction"]),
    "kto_pair": ([], ["train/rewards/margins"]),
    "simpo": (["reference=none"], ["train/rewards/margins", "train/rewards/accuracies"]),
    "simpo_conditional": (["reference=none"], ["train/rewards/margins_chosen_corrupted", "train/loss/conditional"]),
    "orpo": (["reference=none"], ["train/nll", "train/orpo/log_odds_ratio"]),
    "bco": ([], ["train/bco/delta"]),
    "dpo_positive": ([], ["train/rewards/margins"]),
    "ln_dpo": ([], ["train/rewards/margins"]),
    "mpo": ([], ["train/loss/dpo", "train/loss/bco", "train/loss/sft", "train/bco/delta"]),
}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("objective", sorted(RUNS))
def test_few_step_run_of_each_objective(objective, tmp_path, cache_dir):
    extra, logged = RUNS[objective]
    cfg = compose_train([f"objective={objective}", *extra, "trainer.max_steps=3", "trainer.val_check_interval=3",
                         "trainer.log_every_n_steps=1", "data.num_train_scenes=12", "data.num_val_scenes=4",
                         "data.batch_size=4", "eval.num_scenes=2", "eval.max_new_tokens=4", "evaluate_initial=false",
                         "eval.counter_prior_scenes=0", "callbacks.progress_bar=null",
                         "callbacks.hallucination_eval=null"], tmp_path, cache_dir)
    with open_dict(cfg):
        cfg.base.overrides = TINY_BASE
    metrics = train(cfg)
    assert 0.0 <= metrics["test/chair_i"] <= 1.0
    header, *rows = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()
    columns = header.split(",")
    for name in ["train/loss", "val/loss", *logged]:
        assert name in columns, f"{objective} does not log {name}"
    losses = [row.split(",")[columns.index("train/loss")] for row in rows]
    assert sum(1 for value in losses if value and math.isfinite(float(value))) == 3  # one finite loss per step
