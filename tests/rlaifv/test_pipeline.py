"""The RLAIF-V loop end to end on a tiny untrained policy: outputs, provenance, and resume after a kill in
each stage (finished stages are read back, never recomputed; the result equals an uninterrupted run)."""

from __future__ import annotations

import json

import pytest

from tests.rlaifv.helpers import compose_pipeline
from vlmalign.errors import ConfigError
from vlmalign.pipelines.rlaifv import pipeline as pipeline_module
from vlmalign.pipelines.rlaifv import stages
from vlmalign.pipelines.rlaifv.pipeline import RLAIFVPipeline
from vlmalign.reliability.run_state import RunStateCallback

STAGES = ("sample", "split_claims", "label", "make_pairs", "train")


@pytest.fixture(scope="module")
def finished(tmp_path_factory, policy):
    root = tmp_path_factory.mktemp("uninterrupted")
    summary = RLAIFVPipeline(compose_pipeline(root / "run", root / "cache", policy)).run()
    return root / "run", summary


def test_a_round_writes_every_stage_with_provenance_and_held_out_metrics(finished):
    workdir, summary = finished
    round_dir = workdir / "round_1"
    for stage in ("samples", "claims", "labels", "pairs", "train"):
        assert (round_dir / f"{stage}.jsonl").exists() and (round_dir / f"{stage}.jsonl.sha256").exists()
    samples = [json.loads(line) for line in (round_dir / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 4 and all(len(s["responses"]) == 3 for s in samples)
    pairs = [json.loads(line) for line in (round_dir / "pairs.jsonl").read_text().splitlines()]
    assert pairs and all(p["chosen_score"] - p["rejected_score"] >= 1 for p in pairs)
    assert max(sum(p["instruction_id"] == s["instruction_id"] for p in pairs) for s in samples) <= 2
    provenance = json.loads((round_dir / "provenance.json").read_text())
    assert provenance["pairs"] == len(pairs) and provenance["responses"] == 12
    assert (round_dir / "train" / "model" / "config.json").exists()
    assert [r["round"] for r in summary] == [0, 1] and "test/chair_i" in summary[1]
    assert summary[1]["policy"] == str(round_dir / "train" / "model")
    assert json.loads((workdir / "summary.json").read_text()) == summary
    # metrics.json, written last, marks the finished pipeline for vlmalign-report and vlmalign-claims
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["test/chair_i"] == summary[1]["test/chair_i"] and metrics["pairs/total"] == len(pairs)
    assert metrics["rounds"] == 1
    assert {k: v for k, v in metrics.items() if k.startswith("labeler/")} == \
        {k: v for k, v in provenance.items() if k.startswith("labeler/")}


class Killed(Exception):
    pass


@pytest.mark.parametrize("stage", STAGES)
def test_resume_after_a_kill_in_each_stage_redoes_only_that_stage(stage, tmp_path, policy, finished, monkeypatch):
    cfg = compose_pipeline(tmp_path / "run", tmp_path / "cache", policy)
    calls = {name: 0 for name in STAGES}

    def spy(name, real):
        def wrapped(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return wrapped

    if stage == "train":  # die inside the fit, after the checkpoint of step 1
        real_end = RunStateCallback.on_train_batch_end if hasattr(RunStateCallback, "on_train_batch_end") else None

        def die_at_step_2(self, trainer, *args):
            if real_end is not None:
                real_end(self, trainer, *args)
            if trainer.global_step == 2:
                raise Killed

        with monkeypatch.context() as patch:
            patch.setattr(RunStateCallback, "on_train_batch_end", die_at_step_2)
            with pytest.raises(Killed):
                RLAIFVPipeline(cfg).run()
        assert (tmp_path / "run" / "round_1" / "train" / "checkpoints" / "last.ckpt").exists()
    else:
        def die(*args, **kwargs):
            raise Killed

        with monkeypatch.context() as patch:
            patch.setattr(stages, stage, die)
            with pytest.raises(Killed):
                RLAIFVPipeline(cfg).run()
    for name in STAGES[:-1]:
        monkeypatch.setattr(stages, name, spy(name, getattr(stages, name)))
    resumed_from = []
    real_train = pipeline_module.RLAIFVPipeline.train_round

    def spy_train(self, *args):
        calls["train"] += 1
        last = self.workdir / "round_1" / "train" / "checkpoints" / "last.ckpt"
        resumed_from.append(last.exists())
        return real_train(self, *args)

    monkeypatch.setattr(pipeline_module.RLAIFVPipeline, "train_round", spy_train)
    summary = RLAIFVPipeline(cfg).run()
    done_before = STAGES[: STAGES.index(stage)]
    assert all(calls[name] == 0 for name in done_before if name != "train")
    assert all(calls[name] == 1 for name in STAGES[STAGES.index(stage):])
    if stage == "train":
        assert resumed_from == [True]  # continued from the step-1 checkpoint, not from scratch
    _, expected = finished
    for key in ("pairs", "claims", "rejected_claims", "test/chair_i", "test/cover"):
        assert summary[1][key] == pytest.approx(expected[1][key]), key


def test_a_workdir_of_another_config_is_refused(tmp_path, policy, finished):
    workdir, _ = finished
    cfg = compose_pipeline(workdir, tmp_path / "cache", policy, "pairs.min_gap=2")
    with pytest.raises(ConfigError, match="pairs"):
        RLAIFVPipeline(cfg).run()


def test_stop_after_pairs_builds_the_data_without_training(tmp_path, policy):
    summary = RLAIFVPipeline(compose_pipeline(tmp_path / "run", tmp_path / "cache", policy, "stop_after=pairs")).run()
    round_dir = tmp_path / "run" / "round_1"
    assert (round_dir / "pairs.jsonl").exists() and not (round_dir / "train").exists()
    assert summary[1]["pairs_file"] == str(round_dir / "pairs.jsonl") and summary[1]["pairs"] > 0
    with pytest.raises(ConfigError, match="stop_after"):
        RLAIFVPipeline(compose_pipeline(tmp_path / "other", tmp_path / "cache", policy, "stop_after=train")).run()
