"""Hydra callback: record each run's outcome in ``status.json`` and name a failed sweep member clearly.

Enabled in ``conf/hydra/default.yaml``. Hydra runs every member of a sweep even when one raises (the
basic launcher records the exception and goes on; the sweeper re-raises the first one only after the
whole batch has run), but its own message comes at the very end. This callback logs the failure when
it happens, with the member's number and overrides, and writes it to ``status.json`` so
``vlmalign-report`` lists the member as failed instead of dropping it.

Before a sweep starts it also checks that the sweeper and launcher plugins the config names are
installed (they come with the ``sweep`` extra), so a missing plugin is one clear line, not a traceback.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
from datetime import datetime, timezone
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from vlmalign.report.status import COMPLETED, FAILED, MAX_ERROR_CHARS, RUNNING, read_status, write_status
from vlmalign.utils.cli import on_recorded_exit
from vlmalign.utils.secrets import mask_secret_values

log = logging.getLogger("vlmalign.sweep")
EXTRA_HINT = "pip install -e '.[sweep]'  (hydra-optuna-sweeper, hydra-joblib-launcher, hydra-submitit-launcher)"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _importable(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except ModuleNotFoundError:  # no plugin at all installed: the ``hydra_plugins`` namespace itself is missing
        return False


def missing_plugins(config: DictConfig) -> list[str]:
    """``hydra.<kind>._target_=...`` entries whose ``hydra_plugins`` package is not importable."""
    missing = []
    for kind in ("sweeper", "launcher"):
        target = OmegaConf.select(config, f"hydra.{kind}._target_", default=None)
        if isinstance(target, str) and target.startswith("hydra_plugins."):
            if not _importable(".".join(target.split(".")[:2])):
                missing.append(f"hydra.{kind}._target_={target}")
    return missing


class RunStatusCallback(Callback):
    def __init__(self) -> None:
        self._started: float | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        missing = missing_plugins(config)
        if missing:  # Hydra turns a callback's exception into a warning, so exit like NoLiteralSecrets does
            print(f"vlmalign: error: the Hydra plugin for {', '.join(missing)} is not installed. "
                  f"Install it with: {EXTRA_HINT}", file=sys.stderr)
            sys.exit(2)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._started = time.perf_counter()
        on_recorded_exit(_record_exit)  # a user error or a preemption ends the job by exiting: record it too
        try:
            write_status(HydraConfig.get().runtime.output_dir, status=RUNNING, started=_now())
        except OSError as error:  # bookkeeping must never fail the run itself
            log.warning("could not write status.json: %s", error)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        hydra = HydraConfig.get()
        failed = job_return.status.name == "FAILED"
        fields: dict[str, Any] = {"status": FAILED if failed else COMPLETED, "ended": _now()}
        if self._started is not None:
            fields["wall_s"] = round(time.perf_counter() - self._started, 1)
        if failed:
            error = job_return._return_value  # the exception; JobReturn.return_value would re-raise it
            fields["error"] = _masked(f"{type(error).__name__}: {error}")
            sweep = hydra.mode is not None and hydra.mode.name == "MULTIRUN"
            log.error("%s (%s) failed: %s%s", f"sweep member #{hydra.job.num}" if sweep else "the run",
                      mask_secret_values(" ".join(hydra.overrides.task)), fields["error"],
                      "  [the other members go on; `vlmalign-report` lists this one as failed]" if sweep else "")
        try:
            write_status(hydra.runtime.output_dir, **fields)
        except OSError as error:
            log.warning("could not write status.json: %s", error)


def _masked(error: str) -> str:
    return mask_secret_values(error)[:MAX_ERROR_CHARS]


def _record_exit(code: int, status: str, error: str) -> None:
    record_end(HydraConfig.get().runtime.output_dir, status, error, exit_status=code)


def record_end(run_dir: str, status: str, error: str, **fields: Any) -> None:
    """``status.json`` for a run that ends by exiting (a user error, a preemption), which Hydra's job-end hook never
    sees. ``status``: ``failed`` or ``preempted`` (the report lists a preempted run as incomplete: resumable)."""
    try:
        read = read_status(run_dir)
        wall = {"wall_s": round(time.time() - datetime.fromisoformat(read["started"]).timestamp(), 1)} \
            if "started" in read else {}
        write_status(run_dir, status=status, ended=_now(), error=_masked(error), **wall, **fields)
    except (OSError, ValueError) as exc:
        log.warning("could not write status.json: %s", exc)
