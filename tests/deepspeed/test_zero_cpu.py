"""DeepSpeed ZeRO-2/3 run for real on DeepSpeed's CPU accelerator (gloo), each scenario in its own process
(tests/deepspeed/zero_worker.py). 30-60 s each on 2 cores (the first run on a machine also compiles DeepSpeed's
shared-memory comm op, ~70 s, cached in ~/.cache/torch_extensions), hence ``slow``:
``pytest tests/deepspeed -m slow``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def run_worker(tmp_path: Path, scenario: str, stage: int = 3, ranks: int = 1, port: int = 29533) -> list[dict]:
    out = tmp_path / scenario
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "GROUP_RANK", "LOCAL_WORLD_SIZE"):
        env.pop(key, None)
    module = ["-m", "tests.deepspeed.zero_worker", scenario, str(out), str(stage)]
    launcher = [] if ranks == 1 else ["-m", "torch.distributed.run", f"--nproc_per_node={ranks}",
                                      f"--master_port={port}"]
    done = subprocess.run([sys.executable, *launcher, *module], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return [json.loads(Path(f"{out}.{rank}").read_text()) for rank in range(ranks)]


@pytest.mark.parametrize("stage", [2, 3])
def test_zero_engine_dpo_steps_match_the_plain_path(tmp_path, stage):
    """deepspeed.initialize outside Lightning: the mDPO loss before and after one AdamW step (clip 1.0) equals the
    plain torch path; under ZeRO-3 the parameters really are partitioned."""
    (result,) = run_worker(tmp_path, "engine", stage, port=29533 + stage)
    assert result["zero"] == pytest.approx(result["plain"], rel=1e-5, abs=1e-6)
    assert result["plain"][0] != pytest.approx(result["plain"][1])  # the step moved the policy
    if stage == 3:
        assert result["partitioned_numel"] == 0 and result["full_numel"] > 0  # every rank holds shards, not tensors


def test_zero3_on_two_ranks_matches_the_plain_path(tmp_path):
    """Two gloo ranks under torchrun: each holds half of every parameter; the same batch on both gives the plain
    path's losses (the gradient all-reduce averages two equal gradients)."""
    results = run_worker(tmp_path, "engine", 3, ranks=2, port=29541)
    for result in results:
        assert result["zero"] == pytest.approx(result["plain"], rel=1e-5, abs=1e-6)
        assert 0 < result["shard_numel"] < 0.6 * result["full_numel"]  # about half of every parameter per rank


@pytest.mark.parametrize("stage", [2, 3])
def test_lightning_deepspeed_fit_saves_a_directory_and_resumes(tmp_path, stage):
    (result,) = run_worker(tmp_path, "lightning", stage, port=29535 + stage)
    first, resumed = result["first"], result["resumed"]
    assert first["engine"] == "DeepSpeedEngine" and first["global_step"] == 2
    assert first["checkpoint_problem"] is None  # a complete DeepSpeed checkpoint directory
    assert resumed["global_step"] == 3 and len(resumed["losses"]) == 1  # continued at step 3, not from scratch
    assert all(math.isfinite(x) for x in first["losses"] + resumed["losses"])


def test_zero3_frozen_reference_is_sharded_and_equals_lora_disabled(tmp_path):
    """Parity under ZeRO-3: the frozen copy in its own ZeRO-3 engine gives the same loss as the policy with its
    adapters off, on a policy that has moved away from the reference (not the trivial 3 ln 2)."""
    (result,) = run_worker(tmp_path, "reference_parity", 3, port=29539)
    frozen, lora = result["frozen"], result["lora_disabled"]
    assert frozen["reference_sharded"] is True
    assert frozen["losses"] == pytest.approx(lora["losses"], rel=1e-6)
    assert abs(frozen["losses"][0] - result["ln2x3"]) > 1e-4


def test_zero3_policy_is_gathered_for_export_and_evaluation(tmp_path):
    (result,) = run_worker(tmp_path, "export", 3, port=29540)
    assert result["empty_before"] > 0 and result["empty_after"] == 0 and result["empty_saved"] == 0
    assert result["loss_unsharded"] == pytest.approx(result["loss_sharded"], rel=1e-6)


def test_precomputed_reference_gathers_a_policy_built_as_zero3_shards(tmp_path):
    (result,) = run_worker(tmp_path, "zero3_init", 3, port=29542)
    assert result["sharded_partitioned"] is True and result["plain_partitioned"] is False
    assert result["sharded_key"] == result["plain_key"]  # same weights digest: the shards were gathered
    for sample, views in result["plain_table"].items():
        for view, (total, count) in views.items():
            assert result["sharded_table"][sample][view][1] == count
            assert result["sharded_table"][sample][view][0] == pytest.approx(total, rel=1e-5)
