"""PNG charts of a report table: bars with error bars (mean ± std over seeds) and training curves.

Uses matplotlib's object API with the Agg canvas, never ``pyplot``: no global backend switch, no
display needed, nothing left open between calls.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vlmalign.report.logs import read_curves
from vlmalign.report.table import Table

PALETTE = ("#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb", "#000000")


def _labels(table: Table) -> list[str]:
    return ["\n".join(label.values()) or "all" for label in table.display_labels()]


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    return path


def bar_chart(table: Table, path: str | Path, title: str = "") -> Path:
    """One panel per metric: a bar per row at the mean, the std as error bar, each seed as a dot."""
    metrics, labels = table.metrics, _labels(table)
    figure = Figure(figsize=(max(3.0, 0.55 * len(labels) + 1.2) * len(metrics), 3.8), layout="constrained")
    for index, (axes, metric) in enumerate(zip(figure.subplots(1, len(metrics), squeeze=False)[0], metrics)):
        for x, row in enumerate(table.rows):
            mean, std, _ = row.stats(metric)
            if mean is None:
                continue
            color = PALETTE[x % len(PALETTE)]
            axes.bar(x, mean, yerr=std or 0.0, capsize=4, color=color, alpha=0.8, edgecolor="black", linewidth=0.5)
            values = row.values(metric)
            axes.scatter([x] * len(values), values, s=10, color="black", zorder=3)
        for name, baseline in table.baselines:
            if metric in baseline:
                axes.axhline(baseline[metric], linestyle="--", color="gray", linewidth=1,
                             label=name if index == 0 else None)
        long = max(map(len, labels)) > 8  # long labels are slanted so neighbours do not overlap
        axes.set_xticks(range(len(labels)), labels, rotation=30 if long else 0, ha="right" if long else "center",
                        fontsize=8)
        axes.set_title(metric.removeprefix("test/"), fontsize=10)
        axes.grid(axis="y", alpha=0.3)
    if table.baselines:
        figure.legend(loc="outside lower center", fontsize=8)
    figure.suptitle(title or "mean ± std over seeds (dots: seeds)", fontsize=10)
    return _save(figure, Path(path))


def curve_chart(table: Table, metrics: list[str] | tuple[str, ...], path: str | Path, title: str = "") -> Path | None:
    """One panel per logged metric: each run thin, each row's mean over its runs thick. None if no run logged any."""
    curves = {id(run): read_curves(run.path) for row in table.rows for run in row.runs}
    metrics = [m for m in metrics if any(m in c for c in curves.values())]
    if not metrics:
        return None
    figure = Figure(figsize=(4.2 * len(metrics), 3.4), layout="constrained")
    labels = [label.replace("\n", " ") for label in _labels(table)]
    for axes, metric in zip(figure.subplots(1, len(metrics), squeeze=False)[0], metrics):
        for x, (row, label) in enumerate(zip(table.rows, labels)):
            color = PALETTE[x % len(PALETTE)]
            series = [dict(curves[id(run)][metric]) for run in row.runs if metric in curves[id(run)]]
            for points in series:
                axes.plot(list(points), list(points.values()), color=color, alpha=0.25, linewidth=0.8)
            shared = sorted(set.intersection(*(set(s) for s in series))) if series else []
            if shared:
                axes.plot(shared, [statistics.mean(s[step] for s in series) for step in shared], color=color,
                          linewidth=1.8, label=label)
        axes.set_title(metric, fontsize=10)
        axes.set_xlabel("step", fontsize=8)
        axes.grid(alpha=0.3)
    figure.legend(*figure.axes[0].get_legend_handles_labels(), loc="outside right upper", fontsize=8)
    figure.suptitle(title or "training curves (thin: runs, thick: mean over runs)", fontsize=10)
    return _save(figure, Path(path))
