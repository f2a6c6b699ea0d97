"""``resume=true``: find the newest trustworthy checkpoint of an unfinished earlier run of the same job.

Every run records ``run_identity.json`` (a fingerprint of its config without the keys that only say
where and how it writes). A run is unfinished while it has no ``metrics.json``. Among the unfinished
runs of the same identity under the task's output folder, the newest checkpoint whose checksum
verifies is the resume point (``last.ckpt`` first, then the periodic ``step*.ckpt`` files, so a
checkpoint cut off mid-write falls back to the previous one instead of failing the resume).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import DictConfig

from vlmalign.reliability.checkpoint_io import CheckpointError, checkpoint_problem
from vlmalign.utils.compose import NOT_COMPUTED, config_fingerprint
from vlmalign.utils.files import write_json_atomic
from vlmalign.utils.reporting import METRICS_FILE as RESULTS
from vlmalign.utils.reporting import SUPERSEDED_FILE as SUPERSEDED  # a run another run resumed from: never again

log = logging.getLogger(__name__)
RUN_IDENTITY = "run_identity.json"
NOT_IDENTITY = (*NOT_COMPUTED, "ckpt_path")  # resuming from another checkpoint is still the same job


def run_identity(cfg: DictConfig) -> str:
    return config_fingerprint(cfg, NOT_IDENTITY)


def record_identity(output_dir: Path, cfg: DictConfig, resumed_from: str | None) -> None:
    """Mark ``output_dir`` as a run of this config; a run it resumes from is marked superseded by it."""
    write_json_atomic(output_dir / RUN_IDENTITY, {"identity": run_identity(cfg), "task_name": cfg.task_name,
                                                  "seed": cfg.seed, "resumed_from": resumed_from})
    if resumed_from:
        source = Path(resumed_from).resolve().parent.parent
        if (source / RUN_IDENTITY).exists() and source != output_dir.resolve():
            write_json_atomic(source / SUPERSEDED, {"run": str(output_dir)})


def find_resume_checkpoint(search_dir: Path, cfg: DictConfig, exclude: Path | None = None) -> Path | None:
    identity = run_identity(cfg)
    candidates: list[Path] = []
    for marker in search_dir.rglob(RUN_IDENTITY) if search_dir.exists() else ():
        run = marker.parent
        if exclude is not None and run.resolve() == exclude.resolve():
            continue
        if (run / RESULTS).exists() or (run / SUPERSEDED).exists():
            continue
        try:
            if json.loads(marker.read_text()).get("identity") != identity:
                continue
        except (OSError, ValueError):
            continue
        checkpoints = run / "checkpoints"
        candidates += [checkpoints / "last.ckpt", *sorted(checkpoints.glob("step*.ckpt"), reverse=True)]
    existing = sorted((c for c in candidates if c.exists()), key=lambda c: c.stat().st_mtime, reverse=True)
    for checkpoint in existing:
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return checkpoint
        log.warning("not resuming from %s: %s", checkpoint, problem)
    if existing:  # starting from step 0 here would silently redo (and overwrite the record of) the work
        raise CheckpointError(
            f"resume=true: none of the {len(existing)} checkpoints of the unfinished run(s) of this config verifies "
            f"(newest: {existing[0]}; each reason is logged above). Nothing was started or changed. To start "
            "again from step 0, rerun without resume=true; to resume from a checkpoint of your own, pass ckpt_path=")
    return None
