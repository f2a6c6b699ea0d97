"""Run outputs: metrics.json, samples.jsonl and the printed metrics table."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vlmalign.utils.files import write_json_atomic, write_text_atomic

# What a run directory holds that other code reads back: metrics.json is written last and marks the run finished
# (resume=true skips it, vlmalign-report counts it); resume=true writes superseded_by.json into a run it took over.
METRICS_FILE = "metrics.json"
SUPERSEDED_FILE = "superseded_by.json"

HEADLINE = ("chair_i", "chair_s", "cover", "counter_prior/chair_i", "counter_prior/cover", "attribute_error",
            "spatial_error", "count_error", "pope/f1", "pope/accuracy", "pope/random/accuracy", "pope/random/f1",
            "pope/popular/accuracy", "pope/popular/f1", "pope/adversarial/accuracy", "pope/adversarial/f1",
            "pope/random/yes_ratio")


def write_results(output_dir: str | Path, metrics: Mapping[str, float], samples: list[dict]) -> None:
    """samples.jsonl first: metrics.json is what marks a run finished (``resume=true`` skips such runs)."""
    output_dir = Path(output_dir)
    write_text_atomic(output_dir / "samples.jsonl", "".join(json.dumps(s) + "\n" for s in samples))
    write_json_atomic(output_dir / METRICS_FILE, dict(metrics))


def print_metrics_table(columns: Mapping[str, Mapping[str, float]], title: str = "Evaluation") -> None:
    """One column per evaluated model (e.g. ``{"untrained": {...}, "sft": {...}}``), headline rows first."""
    table = Table(title=title)
    table.add_column("metric")
    for name in columns:
        table.add_column(name, justify="right")
    keys = [k for k in HEADLINE if any(k in m for m in columns.values())]
    keys += sorted({k for m in columns.values() for k in m} - set(keys))
    for key in keys:
        table.add_row(key, *(f"{m[key]:.3f}" if key in m else "-" for m in columns.values()))
    Console().print(table)
