"""Kill a run at several points (SIGKILL, preemption signals, a torn checkpoint write), resume it with
``resume=true``, and get bitwise the same final model and metrics as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

# 12 scenes -> 24 examples -> 6 batches of 4 per epoch: 8 steps cross an epoch boundary.
JOB = [
    "experiment=sft_shapes", "task_name=crash", "logger=none", "callbacks.progress_bar=null",
    "trainer.max_steps=8", "trainer.val_check_interval=4", "callbacks.model_checkpoint.every_n_train_steps=2",
    "data.num_train_scenes=12", "data.num_val_scenes=2", "data.batch_size=4",
    "eval.num_scenes=3", "eval.max_new_tokens=6", "eval.batch_size=3",
    "callbacks.hallucination_eval.evaluator.num_scenes=2", "scheduler.num_warmup_steps=1",
]
FAULT = "+callbacks.fault._target_=vlmalign.reliability.faults.KillAtStep"


def _run(root: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "VLMALIGN_ROOT": str(root), "VLMALIGN_CACHE": str(root.parent / "cache"),
           "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}
    return subprocess.run([sys.executable, "-m", "vlmalign.train", *JOB, *extra], env=env, cwd=root,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)


def _finished(root: Path) -> Path:
    [run] = [p.parent for p in (root / "outputs" / "crash").rglob("metrics.json")]
    return run


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "model" / "model.safetensors")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shared") / "reference"
    root.mkdir()
    done = _run(root)
    assert done.returncode == 0, done.stdout[-3000:]
    return _finished(root)


@pytest.mark.parametrize(("step", "phase", "signum", "resumed_at"), [
    (3, "batch_end", "SIGKILL", 2),         # between two periodic checkpoints
    (7, "batch_end", "SIGKILL", 6),         # the last checkpoint is the epoch boundary
    (4, "checkpoint_write", "SIGKILL", 2),  # killed half-way through writing the step-4 checkpoint
    (5, "batch_end", "SIGTERM", 5),         # preemption: checkpoint at the end of the current step
    (5, "batch_end", "SIGUSR1", 5),
    (6, "batch_end", "SIGTERM", 6),         # the last batch of epoch 0: once recorded as epoch 1, skipping its data
    (6, "batch_end", "SIGUSR1", 6),
])
def test_killed_run_resumes_to_the_same_result(uninterrupted, tmp_path_factory, step, phase, signum, resumed_at):
    root = tmp_path_factory.mktemp("shared") / f"killed_{phase}_{step}_{signum}"
    root.mkdir()
    killed = _run(root, FAULT, f"+callbacks.fault.step={step}", f"+callbacks.fault.phase={phase}",
                  f"+callbacks.fault.signum={signum}")
    if signum == "SIGKILL":
        assert killed.returncode == -signal.SIGKILL
    else:
        assert killed.returncode == 143 and "preempted at step" in killed.stdout, killed.stdout[-3000:]
    [killed_run] = [p.parent for p in (root / "outputs" / "crash").rglob("run_identity.json")]
    assert not (killed_run / "metrics.json").exists()

    resumed = _run(root, "resume=true")
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert f"resuming from {killed_run}" in resumed.stdout
    run = _finished(root)
    assert json.loads((run / "run_identity.json").read_text())["resumed_from"].startswith(str(killed_run))
    assert torch.load(Path(json.loads((run / "run_identity.json").read_text())["resumed_from"]),
                      weights_only=True)["global_step"] == resumed_at

    expected, got = _weights(uninterrupted), _weights(run)
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected), "resumed weights differ from the uninterrupted run"
    reference_metrics = json.loads((uninterrupted / "metrics.json").read_text())
    resumed_metrics = json.loads((run / "metrics.json").read_text())
    assert {k: v for k, v in resumed_metrics.items() if k.startswith("test/")} == \
        {k: v for k, v in reference_metrics.items() if k.startswith("test/")}

    # The run it resumed from is superseded: resuming again starts fresh instead of redoing it.
    assert (killed_run / "superseded_by.json").exists()


DPO = ["objective=dpo", "reference=precomputed", "data=shapes_preference", "task_name=crash_dpo"]


def test_killed_dpo_run_resumes_with_its_precomputed_reference_cache(tmp_path_factory):
    shared = tmp_path_factory.mktemp("dpo")
    roots = {name: shared / name / "root" for name in ("reference", "killed")}  # separate caches
    for root in roots.values():
        root.mkdir(parents=True)
    done = _run(roots["reference"], *DPO)
    assert done.returncode == 0, done.stdout[-3000:]
    killed = _run(roots["killed"], *DPO, FAULT, "+callbacks.fault.step=5")
    assert killed.returncode == -signal.SIGKILL
    resumed = _run(roots["killed"], *DPO, "resume=true")
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert "reference cache written" in killed.stdout and "reference cache written" not in resumed.stdout
    [expected] = [p.parent for p in (roots["reference"] / "outputs").rglob("metrics.json")]
    [got] = [p.parent for p in (roots["killed"] / "outputs").rglob("metrics.json")]
    assert all(torch.equal(a, b) for a, b in zip(_weights(expected).values(), _weights(got).values()))
    assert json.loads((expected / "metrics.json").read_text())["test/chair_i"] == \
        json.loads((got / "metrics.json").read_text())["test/chair_i"]
