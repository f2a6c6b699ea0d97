"""Group runs by the overrides that vary and aggregate each metric as mean ± std over seeds.

The rows are the ablation rows of a paper table: runs whose overrides differ only in ``seed`` form one
row. Keys set to the same value in every run (shared settings) are left out, and a key given in some
runs but not in others counts as varying (its value is ``(default)`` where it was not given). Rows keep
the order of the sweep, which is the order of the values on the command line. Failed and incomplete
runs are counted in their row and listed under the table with the reason; they never vanish.
"""

from __future__ import annotations

import csv
import io
import os
import statistics
from dataclasses import dataclass, field
from datetime import datetime

from vlmalign.report.runs import COMPLETED, FAILED_RUN, ReportError, Run, expected_members

SEED = "seed"
DEFAULT_METRICS = ("test/chair_i", "test/chair_s", "test/cover", "test/pope/f1", "test/pope/accuracy")
UNSET = "(default)"


def parse_override(text: str) -> tuple[str, str]:
    """``+a.b=1`` → (``a.b``, ``1``); a deletion ``~key`` has the value ``(deleted)``."""
    key, sep, value = text.partition("=")
    key = key.lstrip("+~")
    return key, value if sep else "(deleted)"


@dataclass
class Row:
    label: dict[str, str]
    runs: list[Run] = field(default_factory=list)

    @property
    def completed(self) -> list[Run]:
        return [r for r in self.runs if r.status == COMPLETED]

    def values(self, metric: str) -> list[float]:
        return [r.metrics[metric] for r in self.completed if metric in r.metrics]

    @property
    def seeds_text(self) -> str:
        """How many runs the row's numbers come from ("2 of 3" when some failed or did not finish)."""
        done, total = len(self.completed), len(self.runs)
        return f"{done}" if done == total else f"{done} of {total}"

    def stats(self, metric: str) -> tuple[float | None, float | None, int]:
        """(mean, sample std or None below two values, how many runs have the metric)."""
        values = self.values(metric)
        if not values:
            return None, None, 0
        return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else None, len(values)


@dataclass
class Table:
    keys: list[str]
    rows: list[Row]
    metrics: list[str]
    baselines: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[Run]:
        return [r for row in self.rows for r in row.runs if r.status != COMPLETED]

    def display_labels(self) -> list[dict[str, str]]:
        """Row labels with a prefix shared by a column's values cut at its last ``/``
        (``experiment=mdpo_components/dpo`` shows as ``dpo``)."""
        cut = {}
        for key in self.keys:
            values = [row.label[key] for row in self.rows if row.label[key] != UNSET]
            prefix = _common_dir_prefix(values)
            cut[key] = len(prefix)
        return [{k: _short(v[cut[k]:]) if v != UNSET else v for k, v in row.label.items()} for row in self.rows]

    def markdown(self) -> str:
        keys = self.keys or ["runs"]
        header = [*keys, "seeds", *(m.removeprefix("test/") for m in self.metrics)]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for name, metrics in self.baselines:
            cells = [name, *[""] * (len(keys) - 1), "1", *(_fmt(metrics.get(m)) for m in self.metrics)]
            lines.append("| " + " | ".join(cells) + " |")
        for row, label in zip(self.rows, self.display_labels()):
            cells = [label[k] for k in self.keys] if self.keys else ["all"]
            cells += [row.seeds_text, *(format_cell(row, m) for m in self.metrics)]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines + self._problem_lines() + [f"\n{note}" for note in self.notes]) + "\n"

    def _problem_lines(self) -> list[str]:
        problems = self.problems
        if not problems:
            return []
        total = sum(len(row.runs) for row in self.rows)
        lines = [f"\nNot in the table: {len(problems)} of {total} runs."]
        for run in problems:
            lines.append(f"- {run.status}: `{run.path}` ({' '.join(run.overrides)}): {run.detail}")
        return lines

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([*self.keys, "seeds", "failed", "incomplete",
                         *(f"{m}_{s}" for m in self.metrics for s in ("mean", "std"))])
        for name, metrics in self.baselines:
            writer.writerow([name, *[""] * (len(self.keys) - 1), 1, 0, 0,
                             *(v for m in self.metrics for v in (metrics.get(m, ""), ""))])
        for row in self.rows:
            failed = sum(r.status == FAILED_RUN for r in row.runs)
            stats = [row.stats(m)[:2] for m in self.metrics]
            writer.writerow([*(row.label[k] for k in self.keys), len(row.completed), failed,
                             len(row.runs) - len(row.completed) - failed,
                             *("" if v is None else v for pair in stats for v in pair)])
        return buffer.getvalue()


def _common_dir_prefix(values: list[str]) -> str:
    if len(set(values)) < 2:
        return ""
    common = os.path.commonprefix(values)
    return common[: common.rfind("/") + 1]


def _short(value: str) -> str:
    """A long float (an Optuna suggestion such as 0.17117789315586177) shown with 4 significant digits."""
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:.4g}" if len(value) > 8 and not value.isdigit() else value


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def format_cell(row: Row, metric: str) -> str:
    mean, std, n = row.stats(metric)
    text = _fmt(mean) if std is None else f"{mean:.3f} ± {std:.3f}"
    return text + (f" (n={n})" if 0 < n < len(row.completed) else "")


def varying_keys(runs: list[Run]) -> list[str]:
    """Override keys (seed aside) whose value is not the same in every run, in order of first appearance."""
    parsed = [dict(parse_override(o) for o in run.overrides) for run in runs]
    keys = list(dict.fromkeys(k for overrides in parsed for k in overrides))
    return [k for k in keys if k != SEED and len({o.get(k, UNSET) for o in parsed}) > 1]


def build_table(runs: list[Run], metrics: tuple[str, ...] | list[str] | None = None,
                baselines: list[tuple[str, dict[str, float]]] | None = None, sort: str | None = None) -> Table:
    """The table of ``runs``; ``metrics``: default the headline ones the runs have; ``sort``: a metric to
    order rows by (``-metric`` for descending)."""
    available = {k for run in runs for k in run.metrics}
    if metrics is None:  # the headline metrics these runs have (another eval may report others)
        metrics = [m for m in DEFAULT_METRICS if m in available or not available] or sorted(available)
    metrics = list(metrics)
    unknown = [m for m in metrics if available and m not in available]
    if unknown:
        raise ReportError(f"metrics {unknown} are in no run's metrics.json; available: {sorted(available)}")
    keys = varying_keys(runs)
    rows: dict[tuple, Row] = {}
    for run in runs:
        overrides = dict(parse_override(o) for o in run.overrides)
        label = {k: overrides.get(k, UNSET) for k in keys}
        rows.setdefault(tuple(label.values()), Row(label)).runs.append(run)
    ordered = list(rows.values())
    if sort:
        metric = sort.lstrip("-")
        if metric not in metrics:
            raise ReportError(f"--sort {sort}: {metric} is not one of the table's metrics {metrics}")
        missing = float("inf") if not sort.startswith("-") else float("-inf")
        ordered.sort(key=lambda row: row.stats(metric)[0] if row.stats(metric)[0] is not None else missing,
                     reverse=sort.startswith("-"))
    return Table(keys, ordered, metrics, list(baselines or []), _notes(runs))


def span_seconds(members: list[Run]) -> float | None:
    """Wall time of a group of runs: the first start to the last end (parallel members overlap); None when no run
    recorded both or a time cannot be read."""
    spans = [r.span for r in members if r.span]
    if not spans:
        return None
    try:
        start = min(datetime.fromisoformat(s) for s, _ in spans)
        end = max(datetime.fromisoformat(e) for _, e in spans)
    except ValueError:
        return None
    return (end - start).total_seconds()


def _span(members: list[Run]) -> str:
    seconds = span_seconds(members)
    if seconds is None:
        return ""
    return f"; the sweep took {format_duration(seconds)} from the first start to the last end"


def format_duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _notes(runs: list[Run]) -> list[str]:
    notes = []
    for sweep in dict.fromkeys(run.sweep_dir for run in runs):
        members = [r for r in runs if r.sweep_dir == sweep]
        expected = expected_members(sweep)
        if expected is not None and expected > len(members):
            notes.append(f"{sweep}: {expected} members expected, {len(members)} found; the other "
                         f"{expected - len(members)} never started (the sweep stopped before them).")
        walls = [r.wall_s for r in members if r.wall_s is not None]
        if walls:
            notes.append(f"{sweep}: members' wall time {format_duration(sum(walls))} in all "
                         f"({len(walls)} runs, {format_duration(statistics.mean(walls))} each on average)"
                         + _span(members) + ".")
    return notes
