"""Branch-Train-MiX's MoE fine-tune under ``strategy=deepspeed_zero2``, for real on DeepSpeed's CPU accelerator
(tests/btx/zero2_worker.py); ~30 s on 2 cores, hence ``slow``: ``pytest tests/btx -m slow``."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_moe_fine_tune_steps_under_zero2(tmp_path):
    out = tmp_path / "result.json"
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "MASTER_PORT": "29561", "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "GROUP_RANK", "LOCAL_WORLD_SIZE"):
        env.pop(key, None)
    done = subprocess.run([sys.executable, "-m", "tests.btx.zero2_worker", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    result = json.loads(out.read_text())
    assert result["engine"] == "DeepSpeedEngine" and len(result["records"]) == 3
    assert all(math.isfinite(r["loss"]) and r["balance"] > 0 for r in result["records"])
    assert result["router_moved"] > 0  # the router is trained through the balance and SFT losses
