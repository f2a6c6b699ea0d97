"""``status.json``: how a run ended, written into its directory by the Hydra callback (``callback.py``).

``metrics.json`` stays the one mark of a finished run (``resume=true`` and the report agree on that).
``status.json`` tells the other cases apart: ``failed`` (the job raised; the error is recorded) and
``preempted`` (stopped by SIGTERM/SIGUSR1 with a checkpoint to resume from) and ``running`` (started, never
ended: still running, or SIGKILLed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vlmalign.utils.files import write_json_atomic

STATUS_FILE = "status.json"
RUNNING, COMPLETED, FAILED, PREEMPTED = "running", "completed", "failed", "preempted"
MAX_ERROR_CHARS = 2000  # an error message, not a log: the traceback stays in the console output


def write_status(run_dir: str | Path, **fields: Any) -> None:
    """Merge ``fields`` into ``run_dir/status.json`` (the end record keeps the start time)."""
    path = Path(run_dir) / STATUS_FILE
    write_json_atomic(path, {**read_status(run_dir), **fields})


def read_status(run_dir: str | Path) -> dict[str, Any]:
    """The recorded status, or ``{}`` when there is none or it cannot be read."""
    path = Path(run_dir) / STATUS_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
