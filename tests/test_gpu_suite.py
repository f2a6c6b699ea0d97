"""benchmarks/gpu_suite.sh's CPU dry run (tiny model, DeepSpeed's CPU accelerator), so the script is known to work
before a GPU is ever lent: every member's JSON line has its figures, finite and positive; a member that cannot run
gets a line saying why and the suite goes on.

Times on 2 shared cores at 1 thread: the whole suite ~60 s, the skipped peer ~10 s. A machine that has never run
DeepSpeed's CPU accelerator first compiles its comm op (~70 s more, once, cached in ~/.cache/torch_extensions).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import suite_lines

ROOT = Path(__file__).resolve().parents[1]
# Figures every training member reports under the same names, and each one's throughput unit.
FIGURES = ("step_time_s", "tokens_per_s", "peak_memory_gib", "mfu", "model_tflop_per_step", "parameters")
THROUGHPUT = {"dpo": "pairs_per_s", "mdpo": "pairs_per_s", "grpo": "prompts_per_s", "trl_dpo": "pairs_per_s"}


def free_port() -> int:
    with socket.socket() as probe:  # DeepSpeed's gloo group needs a port no other test or run holds
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_suite(tmp_path: Path, members: str, pythonpath: str = "") -> tuple[int, list[dict]]:
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "GPU_SUITE_MEMBERS": members,
           "GPU_SUITE_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1", "MASTER_PORT": str(free_port()),
           "PYTHONPATH": pythonpath}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_suite.sh"), "--dry-run"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert (tmp_path / "gpu_suite.jsonl").read_text().splitlines() == done.stdout.splitlines(), done.stderr
    return done.returncode, lines


def assert_figures(line: dict) -> None:
    member = line["member"]
    assert "error" not in line, f"{member}: {line['error']}\n" + "\n".join(line.get("stderr_tail", []))
    assert line["dry_run"] is True and line["device"] == "cpu" and line["torch"]
    for key in (*FIGURES, THROUGHPUT[member]):
        assert isinstance(line[key], (int, float)) and math.isfinite(line[key]) and line[key] > 0, (member, key)
    assert line["mfu"] < 1 and line["peak_memory_source"] == "rss" and "bf16" in line["precision"]  # the GPU dtypes
    if member == "grpo":
        assert line["rollout_tokens_per_s"] > 0 and line["generated_tokens_per_step"] > 0


def test_dry_run_of_the_whole_suite(tmp_path):
    """Every member end to end; an unknown member gets a line naming it, the others still run, the exit is 1."""
    rc, lines = run_suite(tmp_path, "dpo bogus mdpo grpo trl_dpo")
    assert [line["member"] for line in lines] == ["preflight", "model", "dpo", "bogus", "mdpo", "grpo", "trl_dpo"]
    # TRL's peer is optional (pyproject's `bench` extra, absent from a plain `pip install -e .[dev]`): without it the
    # preflight names it and the peer's line says it was skipped; every vlmalign member runs either way
    peer = importlib.util.find_spec("trl") is not None and importlib.util.find_spec("datasets") is not None
    assert lines[0]["dry_run"] is True and lines[0]["device"] == "cpu"
    assert set(lines[0]["missing"]) <= ({"trl", "datasets"} - ({"trl", "datasets"} if peer else set()))
    assert "unknown member 'bogus'" in lines[3]["skipped"]
    for line in (lines[2], *lines[4:6]):
        assert_figures(line)
    if peer:
        assert_figures(lines[6])
    else:
        assert "trl==1.16.0" in lines[6]["skipped"]
    assert rc == 1


def test_without_trl_the_peer_is_skipped_with_a_line_saying_so(tmp_path):
    blocked = tmp_path / "no_trl" / "trl"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('trl is blocked by this test')\n")
    rc, lines = run_suite(tmp_path, "trl_dpo", pythonpath=str(blocked.parent))
    assert [line["member"] for line in lines] == ["preflight", "model", "trl_dpo"]
    assert "trl==1.16.0" in lines[2]["skipped"] and "blocked by this test" in lines[2]["skipped"]
    assert rc == 0  # the peer is optional (pyproject's bench extra)


def test_a_member_that_timed_out_or_printed_no_json_gets_an_error_line(tmp_path):
    killed = suite_lines.record("grpo", 124, "", "loading\nstep 3\n", wall_s=80.0, timeout_s=80, dry_run=False,
                                machine_file=None)
    assert killed["error"].startswith("timed out after 80 s") and killed["stderr_tail"] == ["loading", "step 3"]
    silent = suite_lines.record("dpo", 0, "some chatter\n", "", wall_s=1.0, timeout_s=80, dry_run=False,
                                machine_file=None)
    assert "not a JSON object" in silent["error"]
    fine = suite_lines.record("dpo", 0, 'chatter\n{"pairs_per_s": 3.0}\n', "", wall_s=1.0, timeout_s=80,
                              dry_run=False, machine_file=None)
    assert fine["pairs_per_s"] == 3.0 and "error" not in fine


def test_emit_refuses_a_non_finite_figure():
    from benchmarks import device_metrics

    with pytest.raises(ValueError, match="non-finite measurements \\['mfu'\\]"):
        device_metrics.emit({"mfu": float("nan")})
