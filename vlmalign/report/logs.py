"""Training curves from a run's CSV logs (Lightning's ``CSVLogger``: one ``metrics.csv``, sparse columns)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

DEFAULT_CURVES = ("train/loss", "train/rewards/margins", "val/chair_i", "val/cover")


def metrics_csv(run_dir: Path) -> Path | None:
    """``<run>/csv/metrics.csv`` (``conf/logger/csv.yaml``), else the first ``metrics.csv`` below the run."""
    default = run_dir / "csv" / "metrics.csv"
    if default.exists():
        return default
    return next(iter(sorted(run_dir.rglob("metrics.csv"))), None)


def read_curves(run_dir: Path) -> dict[str, list[tuple[float, float]]]:
    """``{metric: [(step, value), ...]}`` for every numeric column; empty when the run has no CSV log."""
    path = metrics_csv(run_dir)
    if path is None:
        return {}
    curves: dict[str, list[tuple[float, float]]] = {}
    with path.open(newline="") as handle:
        for record in csv.DictReader(handle):
            step = _number(record.get("step"))
            if step is None:
                continue
            for key, text in record.items():
                value = _number(text)
                if key not in ("step", "epoch") and value is not None:
                    curves.setdefault(key, []).append((step, value))
    return curves


def final_validation(run_dir: Path) -> dict[str, float]:
    """The last logged value of every ``val/*`` curve: the run's final validation, for selecting on validation
    (``vlmalign-report ... --metrics val/chair_i --sort val/chair_i``) while ``metrics.json`` holds test scores."""
    return {key: points[-1][1] for key, points in read_curves(run_dir).items() if key.startswith("val/") and points}


def training_means(run_dir: Path) -> dict[str, float]:
    """``mean/<curve>``: the mean over training of every logged ``train/*`` curve. Online RL's claims are about the
    course of training (reward variance, KL to the reference), not its last step; a mean over the logged steps is
    the one number a table can hold. Only as dense as the run logged (``trainer.log_every_n_steps``)."""
    return {f"mean/{key}": sum(value for _, value in points) / len(points)
            for key, points in read_curves(run_dir).items() if key.startswith("train/") and points}


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None
