"""A few-step run of the real main job: outputs, resume and determinism on CPU."""

from __future__ import annotations

import json

import pytest
import torch

from tests.hydra_utils import compose_train
from vlmalign.train import train

FAST = [
    "experiment=sft_shapes",
    "trainer.max_steps=4", "trainer.val_check_interval=2", "trainer.log_every_n_steps=1",
    "data.num_train_scenes=24", "data.num_val_scenes=2", "data.batch_size=4",
    "eval.num_scenes=3", "eval.max_new_tokens=6", "eval.batch_size=3",
    "callbacks.progress_bar=null", "callbacks.model_checkpoint.every_n_train_steps=2",
    "callbacks.hallucination_eval.evaluator.num_scenes=2",
    "scheduler.num_warmup_steps=1",
]
# The default main job: a (tiny, here) SFT base trained once and cached, then mDPO from it.
TINY_BASE = ["experiment=sft_shapes", "trainer.max_steps=3", "data.num_train_scenes=24", "data.batch_size=4",
             "eval.num_scenes=2", "eval.max_new_tokens=4", "callbacks=none", "logger=none"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def _run(tmp_path, cache_dir, *extra):
    return train(compose_train([*FAST, *extra], tmp_path, cache_dir))


def test_few_step_run_writes_metrics_samples_checkpoints_and_model(tmp_path, cache_dir):
    metrics = _run(tmp_path, cache_dir, "evaluate_initial=true")
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == pytest.approx(metrics)
    for key in ("test/chair_i", "test/chair_s", "test/cover", "test/pope/f1", "test/pope/adversarial/yes_ratio"):
        assert 0.0 <= saved[key] <= 1.0
        assert 0.0 <= saved[key.replace("test/", "initial/")] <= 1.0  # evaluate_initial: the start, kept too
    lines = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len(lines) == 3
    assert set(lines[0]) == {"image_id", "objects", "prompt", "response"}
    assert set(lines[0]["objects"][0]) == {"shape", "color", "size", "position"}
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    assert (tmp_path / "model" / "config.json").exists()
    csv = (tmp_path / "csv" / "metrics.csv").read_text()
    assert "train/loss" in csv and "val/chair_i" in csv and "val/loss" in csv


def test_resume_continues_from_the_checkpoint(tmp_path, cache_dir):
    _run(tmp_path / "first", cache_dir)
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["global_step"] == 4
    _run(tmp_path / "second", cache_dir, f"ckpt_path={ckpt}", "trainer.max_steps=6")
    resumed = torch.load(tmp_path / "second" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["global_step"] == 6


def test_same_seed_same_numbers_on_cpu(tmp_path, cache_dir):
    extra = ("trainer.max_steps=3", "callbacks.hallucination_eval=null", "logger=none")
    first = _run(tmp_path / "a", cache_dir, *extra)
    second = _run(tmp_path / "b", cache_dir, *extra)
    _run(tmp_path / "c", cache_dir, *extra, "seed=1")
    drop = {"time/total_s"}
    assert {k: v for k, v in first.items() if k not in drop} == {k: v for k, v in second.items() if k not in drop}
    weights = [(tmp_path / d / "model" / "model.safetensors").read_bytes() for d in "abc"]
    assert weights[0] == weights[1] and weights[0] != weights[2]


def _main_job(output_dir, cache_dir, *extra):
    from omegaconf import open_dict

    cfg = compose_train(["trainer.max_steps=3", "trainer.val_check_interval=3", "trainer.log_every_n_steps=1",
                         "data.num_train_scenes=12",
                         "data.num_val_scenes=2", "data.batch_size=4", "eval.num_scenes=3", "eval.max_new_tokens=6",
                         "callbacks.progress_bar=null", "callbacks.hallucination_eval.evaluator.num_scenes=2",
                         *extra], output_dir, cache_dir)
    with open_dict(cfg):
        cfg.base.overrides = TINY_BASE
    return train(cfg)


def test_main_job_trains_the_base_once_then_mdpo_and_reports_both(tmp_path, cache_dir):
    metrics = _main_job(tmp_path / "first", cache_dir)
    bases = [p for p in (cache_dir / "bases").iterdir() if p.is_dir()]
    assert len(bases) == 1 and (bases[0] / "model" / "config.json").exists()
    assert (bases[0] / "metrics.json").exists() and not (bases[0] / "checkpoints").exists()
    assert 0.0 <= metrics["test/chair_i"] <= 1.0
    csv = (tmp_path / "first" / "csv" / "metrics.csv").read_text()
    for name in ("train/rewards/chosen", "train/rewards/margins", "train/rewards/accuracies",
                 "train/rewards/chosen_corrupted", "train/logps/rejected", "train/loss/conditional"):
        assert name in csv, name
    # a second run (another seed, pairs grouped by length) reuses the cached base instead of training it again
    stamp = (bases[0] / "model" / "model.safetensors").stat().st_mtime_ns
    _main_job(tmp_path / "second", cache_dir, "seed=1", "reference=precomputed", "data.group_by_length=true")
    assert [p for p in (cache_dir / "bases").iterdir() if p.is_dir()] == bases
    assert (bases[0] / "model" / "model.safetensors").stat().st_mtime_ns == stamp
    assert list((cache_dir / "reference").glob("reflogps-*.pt"))
