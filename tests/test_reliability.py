"""Fault handling: checksummed caches and checkpoints, concurrent cache builds, NaN guards."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vlmalign.models.loader import ensure_tiny_llava_checkpoint
from vlmalign.models.tiny_llava import TinyLlavaSpec
from vlmalign.reliability.checkpoint_io import AtomicCheckpointIO, CheckpointError
from vlmalign.reliability.resume import find_resume_checkpoint
from vlmalign.utils.files import MANIFEST, build_once, manifest_problem

SMALL = TinyLlavaSpec(image_size=32, patch_size=8, vision_hidden=32, vision_layers=1, vision_heads=2,
                      text_hidden=32, text_layers=1, text_heads=2, max_positions=128)


def _build_tiny(cache: str, results) -> None:
    results.put(str(ensure_tiny_llava_checkpoint(cache, SMALL, seed=0)))


def test_concurrent_processes_building_one_cache_produce_one_valid_cache(tmp_path):
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [context.Process(target=_build_tiny, args=(str(tmp_path), results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
        assert worker.exitcode == 0
    paths = {results.get(timeout=5) for _ in workers}
    assert len(paths) == 1
    [built] = [p for p in tmp_path.iterdir() if p.is_dir()]  # no scratch left, one cache
    assert str(built) in paths and manifest_problem(built) is None


def _count_build(log: Path):
    def build(scratch: Path) -> None:
        with open(log, "a") as handle:
            handle.write("built\n")
        (scratch / "weights.bin").write_bytes(os.urandom(64))
    return build


def test_a_corrupt_cache_is_moved_aside_and_rebuilt_a_legacy_one_gets_a_manifest(tmp_path):
    target, log = tmp_path / "cache-abc", tmp_path / "builds.log"
    build_once(target, _count_build(log))
    build_once(target, _count_build(log))
    assert log.read_text().count("built") == 1
    (target / "weights.bin").write_bytes(b"flipped")
    build_once(target, _count_build(log))
    assert log.read_text().count("built") == 2 and manifest_problem(target) is None
    assert len(list(tmp_path.glob("cache-abc.corrupt-*"))) == 1  # kept for inspection, never deleted
    (target / MANIFEST).unlink()  # as caches built before manifests existed
    build_once(target, _count_build(log))
    assert log.read_text().count("built") == 2 and (target / MANIFEST).exists()


def _checkpoint(path: Path, step: int) -> None:
    AtomicCheckpointIO().save_checkpoint({"global_step": step, "state_dict": {"w": torch.ones(3) * step}}, path)


def test_truncated_and_bit_flipped_checkpoints_are_refused(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    _checkpoint(path, 4)
    assert io.load_checkpoint(path)["global_step"] == 4
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="last.ckpt is corrupt or truncated"):
        io.load_checkpoint(path)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="refusing to load checkpoint"):
        io.load_checkpoint(path)
    foreign = tmp_path / "foreign.ckpt"  # no recorded checksum: accepted only if it reads back whole
    torch.save({"global_step": 1}, foreign)
    assert io.load_checkpoint(foreign)["global_step"] == 1
    foreign.write_bytes(foreign.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="cannot be read"):
        io.load_checkpoint(foreign)


def test_resume_falls_back_to_the_newest_checkpoint_that_verifies(tmp_path):
    from tests.hydra_utils import compose_train
    from vlmalign.reliability.resume import record_identity

    cfg = compose_train(["experiment=sft_shapes"], tmp_path / "out", tmp_path / "cache")
    run = tmp_path / "runs" / "a"
    record_identity(run, cfg, None)
    for step in (2, 4):
        _checkpoint(run / "checkpoints" / f"step{step:06d}.ckpt", step)
        time.sleep(0.01)
    _checkpoint(run / "checkpoints" / "last.ckpt", 6)
    assert find_resume_checkpoint(tmp_path / "runs", cfg).name == "last.ckpt"
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:100])  # torn
    assert find_resume_checkpoint(tmp_path / "runs", cfg).name == "step000004.ckpt"
    other = compose_train(["experiment=sft_shapes", "seed=1"], tmp_path / "out", tmp_path / "cache")
    assert find_resume_checkpoint(tmp_path / "runs", other) is None  # another config never resumes it
    (run / "metrics.json").write_text("{}")
    assert find_resume_checkpoint(tmp_path / "runs", cfg) is None  # a finished run is not resumed


def test_resume_stops_when_every_checkpoint_is_corrupt_instead_of_starting_at_step_0(tmp_path):
    from tests.hydra_utils import compose_train
    from vlmalign.reliability.resume import record_identity

    cfg = compose_train(["experiment=sft_shapes"], tmp_path / "out", tmp_path / "cache")
    run = tmp_path / "runs" / "a"
    record_identity(run, cfg, None)
    assert find_resume_checkpoint(tmp_path / "runs", cfg) is None  # killed before any checkpoint: a fresh start
    for name in ("step000002.ckpt", "last.ckpt"):
        _checkpoint(run / "checkpoints" / name, 2)
        (run / "checkpoints" / name).write_bytes(b"PK\x03\x04 torn")
    with pytest.raises(CheckpointError, match=r"none of the 2 checkpoints .* verifies .* rerun without resume=true"):
        find_resume_checkpoint(tmp_path / "runs", cfg)


def test_a_full_disk_is_one_error_naming_the_file_and_earlier_checkpoints_stay_intact(tmp_path):
    """RLIMIT_FSIZE stands in for a full disk: the write fails part-way as on ENOSPC (torch: "unexpected pos")."""
    import resource
    import signal

    io = AtomicCheckpointIO()
    earlier = tmp_path / "checkpoints" / "step000002.ckpt"
    io.save_checkpoint({"global_step": 2, "w": torch.zeros(10)}, earlier)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG instead of a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
    try:
        with pytest.raises(CheckpointError) as caught:
            io.save_checkpoint({"global_step": 4, "w": torch.zeros(1 << 20)}, tmp_path / "checkpoints" / "last.ckpt")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    message = str(caught.value)
    assert "\n" not in message and f"could not write checkpoint {tmp_path / 'checkpoints' / 'last.ckpt'}" in message
    assert "are intact" in message and "resume=true" in message
    assert io.load_checkpoint(earlier)["global_step"] == 2
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step000002.ckpt", "step000002.ckpt.sha256"]


JOB = [
    "experiment=sft_shapes", "task_name=guard", "logger=none", "callbacks.progress_bar=null",
    "trainer.max_steps=6", "trainer.val_check_interval=6", "callbacks.model_checkpoint.every_n_train_steps=2",
    "data.num_train_scenes=12", "data.num_val_scenes=2", "data.batch_size=4", "eval.num_scenes=2",
    "eval.max_new_tokens=4", "callbacks.hallucination_eval.evaluator.num_scenes=2", "scheduler.num_warmup_steps=1",
    "+callbacks.fault._target_=vlmalign.reliability.faults.KillAtStep", "+callbacks.fault.step=3",
    "+callbacks.fault.phase=nan_loss",
]


def _run(root: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "VLMALIGN_ROOT": str(root), "VLMALIGN_CACHE": str(root / "cache"), "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", "vlmalign.train", *JOB, *extra], env=env, cwd=root,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)


def test_nan_loss_stops_the_run_naming_step_and_samples_and_keeps_good_checkpoints(tmp_path):
    done = _run(tmp_path)
    assert done.returncode == 2, done.stdout[-3000:]
    assert "vlmalign: error: non-finite loss at step 3 (batch samples ['train-" in done.stdout
    assert "Traceback" not in done.stdout
    [run] = [p.parent for p in tmp_path.rglob("run_identity.json")]
    assert not (run / "metrics.json").exists() and not (run / "model").exists()
    checkpoint = AtomicCheckpointIO().load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 2
    assert all(torch.isfinite(t).all() for t in checkpoint["state_dict"].values())
    status = json.loads((run / "status.json").read_text())  # not "running": the exit is recorded
    assert (status["status"], status["exit_status"]) == ("failed", 2) and "non-finite loss at step 3" in status["error"]


def test_nan_skip_policy_drops_the_update_counts_it_and_finishes(tmp_path):
    done = _run(tmp_path, "numerics.policy=skip")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "non-finite loss at step 3" in done.stdout and "step skipped (1 of at most 10)" in done.stdout
    [run] = [p.parent for p in tmp_path.rglob("metrics.json")]
    checkpoint = AtomicCheckpointIO().load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 6
    [guard] = [v for k, v in checkpoint["callbacks"].items() if "NonFiniteGuard" in k]
    assert guard == {"skipped": 1}


def test_a_bad_checkpoint_path_fails_in_seconds_before_any_base_is_trained(tmp_path):
    torn = tmp_path / "torn.ckpt"
    torn.write_bytes(b"PK\x03\x04 not a whole checkpoint")
    env = {**os.environ, "VLMALIGN_ROOT": str(tmp_path), "VLMALIGN_CACHE": str(tmp_path / "cache")}
    env.pop("HYDRA_FULL_ERROR", None)
    done = subprocess.run([sys.executable, "-m", "vlmalign.train", f"ckpt_path={torn}"], env=env, cwd=tmp_path,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert done.returncode == 2
    assert f"vlmalign: error: ckpt_path: {torn} cannot be read" in done.stdout and "Traceback" not in done.stdout
    assert not (tmp_path / "cache" / "bases").exists()  # the default job's SFT base was never started
    [status] = [json.loads(p.read_text()) for p in tmp_path.rglob("status.json")]
    assert status["status"] == "failed" and status["exit_status"] == 2 and "cannot be read" in status["error"]


def test_two_concurrent_runs_share_one_base_build_and_never_share_a_folder(tmp_path):
    job = ["base=sft_quick", "task_name=pair", "logger=none", "callbacks.progress_bar=null", "trainer.max_steps=2",
           "data.num_train_scenes=8", "data.num_val_scenes=2", "data.batch_size=4", "eval.num_scenes=2",
           "eval.max_new_tokens=4", "callbacks.hallucination_eval.evaluator.num_scenes=2", "evaluate_initial=false"]
    env = {**os.environ, "VLMALIGN_ROOT": str(tmp_path), "VLMALIGN_CACHE": str(tmp_path / "cache"),
           "OMP_NUM_THREADS": "1"}
    runs = [subprocess.Popen([sys.executable, "-m", "vlmalign.train", *job, f"seed={seed}"], env=env, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for seed in (0, 1)]
    logs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], logs[0][-2000:] + logs[1][-2000:]
    assert sum("building SFT base" in log for log in logs) == 1  # the other run waited, then reused it
    assert sum("reusing SFT base" in log for log in logs) == 1
    [base] = [p for p in (tmp_path / "cache" / "bases").iterdir() if p.is_dir()]
    assert manifest_problem(base) is None
    finished = sorted(p.parent for p in (tmp_path / "outputs" / "pair").rglob("metrics.json"))
    assert len(finished) == 2 and finished[0] != finished[1]


def test_guard_names_non_finite_gradients_even_when_the_loss_is_finite():
    from types import SimpleNamespace

    from vlmalign.reliability.numerics import NonFiniteGuard, NumericalError

    weight = torch.nn.Parameter(torch.ones(2))
    weight.grad = torch.tensor([1.0, float("inf")])
    optimizer = torch.optim.AdamW([weight])
    trainer = SimpleNamespace(global_step=7, default_root_dir="/runs/x")
    guard = NonFiniteGuard()
    guard.on_train_batch_start(trainer, None, {"sample_ids": ["train-3#0"]}, 0)
    guard.on_before_backward(trainer, None, torch.tensor(0.5))
    with pytest.raises(NumericalError, match=r"non-finite gradients at step 7 \(batch samples \['train-3#0'\]\)"):
        guard.on_before_optimizer_step(trainer, None, optimizer)
    weight.grad = torch.tensor([1.0, 2.0])
    guard.on_before_optimizer_step(trainer, None, optimizer)  # finite: nothing happens
    assert weight.grad is not None
