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


def _slow(*values):
    return pytest.param(*values, marks=pytest.mark.slow)


# The fault matrix (docs/reliability.md): each point x SIGKILL / SIGTERM / SIGUSR1. ``resumed_at``: the step of the
# checkpoint the resume starts from (None: killed before the first one, resume=true starts afresh). Checkpoints every
# 2 steps, validation every 4, 6 batches an epoch. A caught signal (SIGTERM, SIGUSR1) stops at the end of the current
# step with a checkpoint; one during validation or a checkpoint write stops at the end of the next step.
MATRIX = [
    _slow(1, "batch_end", "SIGKILL", None),     # the first step, before any checkpoint
    _slow(1, "batch_end", "SIGTERM", 1),
    _slow(1, "batch_end", "SIGUSR1", 1),
    (3, "batch_end", "SIGKILL", 2),             # mid-epoch, between two periodic checkpoints
    _slow(3, "batch_end", "SIGTERM", 3),
    _slow(3, "batch_end", "SIGUSR1", 3),
    (5, "batch_end", "SIGTERM", 5),
    (5, "batch_end", "SIGUSR1", 5),
    _slow(6, "batch_end", "SIGKILL", 4),        # the last batch of epoch 0, before its periodic checkpoint
    (6, "batch_end", "SIGTERM", 6),             # once recorded as epoch 1, skipping a whole epoch on resume
    _slow(6, "batch_end", "SIGUSR1", 6),
    (7, "batch_end", "SIGKILL", 6),             # the last checkpoint is the epoch boundary
    _slow(4, "validation", "SIGKILL", 4),       # during the step-4 validation
    _slow(4, "validation", "SIGTERM", 5),
    _slow(4, "validation", "SIGUSR1", 5),
    (4, "checkpoint_write", "SIGKILL", 2),      # half-way through writing the step-4 checkpoint
    _slow(4, "checkpoint_write", "SIGTERM", 5),
    _slow(4, "checkpoint_write", "SIGUSR1", 5),
]


@pytest.mark.parametrize(("step", "phase", "signum", "resumed_at"), MATRIX)
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
    status = json.loads((killed_run / "status.json").read_text())["status"]
    assert status == ("running" if signum == "SIGKILL" else "preempted")  # SIGKILL leaves no chance to record it

    resumed = _run(root, "resume=true")
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    run = _finished(root)
    if resumed_at is None:
        assert "no checkpoint of an unfinished run" in resumed.stdout and "starting fresh" in resumed.stdout
    else:
        assert f"resuming from {killed_run}" in resumed.stdout
        resumed_from = Path(json.loads((run / "run_identity.json").read_text())["resumed_from"])
        assert resumed_from.is_relative_to(killed_run)
        assert torch.load(resumed_from, weights_only=True)["global_step"] == resumed_at
        assert (killed_run / "superseded_by.json").exists()  # resuming again starts fresh instead of redoing it
    _assert_same_result(uninterrupted, run)


def _assert_same_result(expected_run: Path, run: Path) -> None:
    """Bitwise the same weights, tensor by tensor, and the same test metrics."""
    expected, got = _weights(expected_run), _weights(run)
    assert expected.keys() == got.keys()
    differing = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert differing == [], f"{len(differing)} of {len(expected)} weight tensors differ from the uninterrupted run"
    reference_metrics = json.loads((expected_run / "metrics.json").read_text())
    resumed_metrics = json.loads((run / "metrics.json").read_text())
    assert {k: v for k, v in resumed_metrics.items() if k.startswith("test/")} == \
        {k: v for k, v in reference_metrics.items() if k.startswith("test/")}


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


@pytest.fixture(scope="module")
def uninterrupted_dpo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dpo") / "reference"
    root.mkdir()
    done = _run(root, *DPO)
    assert done.returncode == 0, done.stdout[-3000:]
    [run] = [p.parent for p in (root / "outputs").rglob("metrics.json")]
    return run


@pytest.mark.slow
@pytest.mark.parametrize("signum", ["SIGKILL", "SIGTERM", "SIGUSR1"])
def test_a_run_killed_during_its_reference_pass_restarts_to_the_same_result(uninterrupted_dpo, tmp_path_factory,
                                                                           signum):
    """The precomputed reference's pass runs before training: no handler catches the signal, no checkpoint exists,
    no half cache is left (written atomically), and resume=true starts afresh."""
    root = tmp_path_factory.mktemp("dpo") / f"reference_pass_{signum}"
    root.mkdir()
    killed = _run(root, *DPO, FAULT, "+callbacks.fault.phase=reference_pass", "+callbacks.fault.step=1",
                  f"+callbacks.fault.signum={signum}")
    assert killed.returncode == -getattr(signal, signum), killed.stdout[-3000:]
    assert not list((root / "cache").rglob("reflogps-*.pt"))
    resumed = _run(root, *DPO, "resume=true")
    assert resumed.returncode == 0 and "starting fresh" in resumed.stdout, resumed.stdout[-3000:]
    [run] = [p.parent for p in (root / "outputs").rglob("metrics.json")]
    _assert_same_result(uninterrupted_dpo, run)


# A preference job on a small SFT base of its own: the base's overrides may carry the fault (callbacks are not part
# of a base's fingerprint, so the rerun without it builds the same base).
BASE = ["experiment=sft_shapes", "trainer.max_steps=6", "trainer.val_check_interval=6", "data.num_train_scenes=12",
        "data.num_val_scenes=2", "data.batch_size=4", "eval.num_scenes=2", "eval.max_new_tokens=4",
        "callbacks.hallucination_eval.evaluator.num_scenes=2", "callbacks.progress_bar=null", "logger=none"]


def _base(*extra: str) -> list[str]:
    return ["base=sft_quick", "base.overrides=[" + ",".join(f"'{o}'" for o in [*BASE, *extra]) + "]"]


@pytest.fixture(scope="module")
def uninterrupted_on_a_base(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("base") / "reference"
    root.mkdir()
    done = _run(root, *DPO, *_base())
    assert done.returncode == 0, done.stdout[-3000:]
    [run] = [p.parent for p in (root / "outputs").rglob("metrics.json")]
    return run


@pytest.mark.slow
@pytest.mark.parametrize("signum", ["SIGKILL", "SIGTERM", "SIGUSR1"])
def test_a_run_killed_during_its_base_build_reruns_to_the_same_result(uninterrupted_on_a_base, tmp_path_factory,
                                                                     signum):
    root = tmp_path_factory.mktemp("base") / f"killed_{signum}"
    root.mkdir()
    fault = [FAULT, "+callbacks.fault.step=3", f"+callbacks.fault.signum={signum}"]
    killed = _run(root, *DPO, *_base(*fault))
    if signum == "SIGKILL":
        assert killed.returncode == -signal.SIGKILL
    else:  # not "rerun with resume=true": the base's scratch folder is gone, its build starts over
        assert killed.returncode == 143 and "preempted while building the SFT base" in killed.stdout, \
            killed.stdout[-3000:]
        assert "resume=true is not needed" in killed.stdout and "rerun with resume=true" not in killed.stdout
    assert not list((root / "cache" / "bases").glob("sft_quick-*/model"))  # no half base is kept
    rerun = _run(root, *DPO, *_base(), "resume=true")
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    [run] = [p.parent for p in (root / "outputs").rglob("metrics.json")]
    _assert_same_result(uninterrupted_on_a_base, run)
