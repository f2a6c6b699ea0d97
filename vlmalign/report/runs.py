"""Find run directories and read what each one saved: overrides, config, status and ``metrics.json``.

A run directory is what Hydra makes for one job: ``.hydra/overrides.yaml`` and ``.hydra/config.yaml``
(the config as composed, unresolved). ``vlmalign-train`` writes ``metrics.json`` last, so a run with it
finished; one without it either failed (``status.json`` says so, with the error) or is incomplete
(still running, killed or preempted). A run that another run resumed (``superseded_by.json``, written
by ``resume=true``) counts with the metrics of the run that finished it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import Any

import yaml

from vlmalign.errors import VlmalignError
from vlmalign.report.logs import final_validation, training_means
from vlmalign.report.status import FAILED, read_status
from vlmalign.utils.reporting import METRICS_FILE as METRICS
from vlmalign.utils.reporting import SUPERSEDED_FILE as SUPERSEDED

OVERRIDES = Path(".hydra") / "overrides.yaml"
CONFIG = Path(".hydra") / "config.yaml"
COMPLETED, FAILED_RUN, INCOMPLETE = "completed", "failed", "incomplete"


class ReportError(VlmalignError):
    """A report input that cannot be used; the message names the path and what was expected."""


@dataclass
class Run:
    path: Path
    overrides: list[str]
    config: dict[str, Any]
    status: str                                  # completed | failed | incomplete
    metrics: dict[str, float] = field(default_factory=dict)
    detail: str = ""                             # why it failed / what is missing / where it was resumed
    wall_s: float | None = None
    span: tuple[str, str] | None = None          # (started, ended) from status.json, ISO 8601 UTC

    @property
    def seed(self) -> Any:
        return self.config.get("seed")

    @property
    def sweep_dir(self) -> Path:
        return self.path.parent


def _read_yaml(path: Path, expected: type) -> Any:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ReportError(f"{path}: cannot be read as YAML ({error})") from error
    if not isinstance(data, expected):
        raise ReportError(f"{path}: expected a YAML {expected.__name__}, found {type(data).__name__}")
    return data


def read_metrics(path: Path) -> tuple[dict[str, float] | None, str]:
    """(metrics, problem): a ``metrics.json`` that is not a JSON object of numbers is a problem, not a crash."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        return None, f"{path.name} cannot be read ({error})"
    if not isinstance(data, dict):
        return None, f"{path.name} is not a JSON object"
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float))}, ""


def load_run(run_dir: Path) -> Run:
    run_dir = Path(run_dir)
    overrides = [str(o) for o in _read_yaml(run_dir / OVERRIDES, list)]
    config = _read_yaml(run_dir / CONFIG, dict) if (run_dir / CONFIG).exists() else {}
    status = read_status(run_dir)
    run = Run(run_dir, overrides, config, INCOMPLETE, wall_s=status.get("wall_s"),
              span=(status["started"], status["ended"]) if "started" in status and "ended" in status else None)
    source, resumed_in = run_dir, None
    for _ in range(8):  # follow resume=true hand-overs to the run that finished the job
        if (source / METRICS).exists() or not (source / SUPERSEDED).exists():
            break
        try:
            source = Path(json.loads((source / SUPERSEDED).read_text())["run"])
        except (OSError, ValueError, KeyError, TypeError):
            break
        resumed_in = source
    if (source / METRICS).exists():
        metrics, problem = read_metrics(source / METRICS)
        if metrics is not None:
            run.status, run.metrics = COMPLETED, {**training_means(source), **final_validation(source), **metrics}
            run.detail = f"resumed and finished in {resumed_in}" if resumed_in else ""
            run.wall_s = run.wall_s if run.wall_s is not None else metrics.get("time/total_s")
            return run
        run.detail = problem
    elif status.get("status") == FAILED:
        run.status, run.detail = FAILED_RUN, status.get("error", "failed (no error recorded)")
    else:
        started = f" (started {status['started']})" if status.get("started") else ""
        run.detail = f"no {METRICS}{started}: still running, killed, preempted, or exited before finishing"
    return run


def _run_dirs(path: Path) -> list[Path]:
    if (path / OVERRIDES).exists():
        return [path]
    found = {p.parent.parent for p in path.rglob("overrides.yaml") if p.parent.name == ".hydra"}
    return sorted(found, key=_order_key)


def _order_key(run_dir: Path) -> tuple:
    """Sweep folder, then job number as a number (so member 10 comes after member 9)."""
    name = run_dir.name
    return (str(run_dir.parent), int(name) if name.isdigit() else float("inf"), name)


def find_runs(paths: list[str | Path]) -> list[Run]:
    """Every run directory in or under ``paths`` (multirun folders, single runs, or folders holding them)."""
    if not paths:
        raise ReportError("no PATH given: pass one or more multirun folders, e.g. outputs/<task>/multiruns/<time>")
    runs: list[Run] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise ReportError(f"{path}: no such file or directory")
        if not path.is_dir():
            raise ReportError(f"{path}: expected a directory (a multirun folder or a run directory), found a file")
        dirs = _run_dirs(path)
        if not dirs:
            raise ReportError(f"{path}: no run directories found. A run directory holds {OVERRIDES}, which Hydra "
                              "writes for every job; pass a multirun folder such as outputs/<task>/multiruns/<time>")
        for run_dir in dirs:
            if run_dir.resolve() not in seen:
                seen.add(run_dir.resolve())
                runs.append(load_run(run_dir))
    return runs


def expected_members(sweep_dir: Path) -> int | None:
    """How many members the sweep in ``sweep_dir`` launches, from its ``multirun.yaml``; None if unknown.

    Members that never started (the sweep was stopped before them) leave no directory; this count is how
    the report notices them. Basic sweeper: the product of the sweep axes; Optuna: ``n_trials``.
    """
    path = sweep_dir / "multirun.yaml"
    if not path.exists():
        return None
    try:
        hydra = (yaml.safe_load(path.read_text()) or {}).get("hydra", {})
        sweeper = hydra.get("sweeper") or {}
        if "n_trials" in sweeper:
            return int(sweeper["n_trials"])
        from hydra.core.override_parser.overrides_parser import OverridesParser

        params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
        overrides = OverridesParser.create().parse_overrides([*params, *hydra["overrides"]["task"]])
        by_key = {o.get_key_element(): o for o in overrides}  # the command line wins over config params
        return prod(len(list(o.sweep_string_iterator())) if o.is_sweep_override() else 1 for o in by_key.values())
    except Exception:  # noqa: BLE001 - a best-effort note, never a reason to fail the report
        return None
