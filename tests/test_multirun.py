"""Sweeps end to end: a real `vlmalign-train -m` with 1-step members, a crashing member that does not stop
the others, the report over the result; wandb offline runs that `wandb sync` accepts and that hold no secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
from omegaconf import open_dict

from tests.hydra_utils import CONF, compose_train, require_sweep_plugin
from vlmalign.report.cli import main as report

ROOT = CONF.parent
# 1-step members from the untrained tiny model (no SFT base): seconds each, every stage of a real run.
TINY = ["~base", "trainer.max_steps=1", "trainer.val_check_interval=1", "trainer.log_every_n_steps=1",
        "data.num_train_scenes=8", "data.num_val_scenes=2", "data.batch_size=4", "eval.num_scenes=2",
        "eval.max_new_tokens=4", "eval.pope_samplings=[]", "callbacks.progress_bar=null",
        "callbacks.hallucination_eval.evaluator.num_scenes=2", "evaluate_initial=false",
        "scheduler.num_warmup_steps=0"]
KEY = "wandb-test-key-0123456789abcdef"


class CrashOn(pl.Callback):
    """Makes one member of a sweep crash at its first step, as a bug or a broken node would (not a config error)."""

    def __init__(self, objective: str, crash_on: str) -> None:
        self.objective, self.crash_on = objective, crash_on

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.objective == self.crash_on:
            raise RuntimeError(f"injected crash in the {self.objective} member")


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "VLMALIGN_ROOT": str(tmp_path), "VLMALIGN_CACHE": str(tmp_path / "cache"),
            "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize("launcher", ["basic", "local_parallel"])
def test_a_sweep_runs_every_member_records_the_crashed_one_and_the_report_lists_it(launcher, tmp_path, capsys):
    """The default launcher runs members one after another; joblib runs them in worker processes, which must
    still write into one sweep folder (conf/hydra/default.yaml)."""
    if launcher != "basic":
        require_sweep_plugin("hydra_plugins.hydra_joblib_launcher")
    crash = ["+callbacks.crash._target_=tests.test_multirun.CrashOn",
             "+callbacks.crash.objective=${hydra:runtime.choices.objective}", "+callbacks.crash.crash_on=cpo"]
    done = subprocess.run([sys.executable, "-m", "vlmalign.train", "-m", f"hydra/launcher={launcher}",
                           "objective=dpo,cpo,mdpo", *crash, *TINY, "task_name=sweep"], cwd=ROOT,
                          env={**_env(tmp_path), "OMP_NUM_THREADS": "1", "WANDB_API_KEY": KEY}, capture_output=True,
                          text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output  # Hydra re-raises the member's error once the whole sweep has run
    assert "sweep member #1 (objective=cpo" in output and "failed: RuntimeError: injected crash in the cpo member" \
        in output, output
    (sweep,) = (tmp_path / "outputs" / "sweep" / "multiruns").iterdir()
    assert (sweep / "0" / "metrics.json").exists() and (sweep / "2" / "metrics.json").exists()  # mdpo ran after
    assert json.loads((sweep / "1" / "status.json").read_text())["status"] == "failed"
    assert json.loads((sweep / "2" / "status.json").read_text())["status"] == "completed"

    assert report([str(sweep), "--metrics", "test/chair_i,test/cover", "--out", str(tmp_path / "report")]) == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert lines[0] == "| objective | seeds | chair_i | cover |"
    assert [line.split(" | ")[:2] for line in lines[2:5]] == [["| dpo", "1"], ["| cpo", "0 of 1"], ["| mdpo", "1"]]
    assert f"- failed: `{sweep / '1'}` (objective=cpo" in printed and "RuntimeError: injected crash" in printed
    assert (tmp_path / "report" / "curves.png").exists()  # from the members' CSV logs
    assert [p for p in tmp_path.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()] == []


def test_a_member_with_a_config_error_fails_alone(tmp_path):
    tiny = [o for o in TINY if not o.startswith("data.batch_size=")]
    done = subprocess.run([sys.executable, "-m", "vlmalign.train", "-m", "data.batch_size=0,4", *tiny,
                           "task_name=bad_value"], cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True,
                          timeout=600)
    (sweep,) = (tmp_path / "outputs" / "bad_value" / "multiruns").iterdir()
    status = json.loads((sweep / "0" / "status.json").read_text())
    assert status["status"] == "failed" and "data.batch_size=0 must be an integer >= 1" in status["error"]
    assert (sweep / "1" / "metrics.json").exists(), done.stdout + done.stderr


def test_a_wandb_offline_run_logs_the_samples_table_syncs_later_and_holds_no_secret(tmp_path, monkeypatch):
    from vlmalign.train import train

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    monkeypatch.setenv("VLMALIGN_TEST_API_KEY", KEY)
    cfg = compose_train(["experiment=mdpo_components/no_anchor", "logger=wandb", "reference=frozen", *TINY],
                        tmp_path / "run", tmp_path / "cache")
    with open_dict(cfg):
        cfg.extra = {"api_key": "${oc.env:VLMALIGN_TEST_API_KEY}"}  # a secret a config may hold, by reference
    train(cfg)
    (offline,) = (tmp_path / "run" / "wandb").glob("offline-run-*")
    tables = list(offline.rglob("samples_*.table.json"))
    assert any("val" in p.parts for p in tables), "the validation samples table was not logged"
    assert any("test" in p.parts for p in tables), "the test samples table was not logged"
    table = json.loads(next(offline.rglob("samples_*.table.json")).read_text())
    assert table["columns"][:3] == ["image_id", "image", "caption"] and "hallucinated" in table["columns"]
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert leaked == []
    wandb = Path(sys.executable).parent / "wandb"
    synced = subprocess.run([str(wandb), "sync", "--dry-run", str(offline)], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "WANDB_MODE": "offline"})
    assert "Would sync 1 run(s)" in synced.stdout + synced.stderr, synced.stdout + synced.stderr


def test_the_optuna_search_runs_trials_and_writes_the_best_pair(tmp_path):
    require_sweep_plugin("hydra_plugins.hydra_optuna_sweeper")
    done = subprocess.run([sys.executable, "-m", "vlmalign.train", "-m", "hparams_search=dpo_beta",
                           "hydra.sweeper.n_trials=2", "reference=frozen", *TINY], cwd=ROOT, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    (sweep,) = (tmp_path / "outputs" / "dpo_beta" / "multiruns").iterdir()
    best = (sweep / "optimization_results.yaml").read_text()
    assert "objective.terms.dpo.beta" in best and "optimizer.lr" in best
    assert report([str(sweep), "--metrics", "test/chair_i"]) == 0
