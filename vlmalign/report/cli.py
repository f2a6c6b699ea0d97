"""``vlmalign-report PATH...``: the ablation table of one or more multiruns, offline.

Reads each run directory's saved overrides and config (``.hydra/``), ``status.json`` and
``metrics.json``; groups runs by the overrides that vary; prints mean ± std over seeds as markdown (or
CSV); lists failed and incomplete runs under the table. With ``--out DIR`` it also writes
``report.md``, ``report.csv``, ``bars.png`` (error bars) and ``curves.png`` (training curves from the
CSV logs) there.

    vlmalign-report outputs/mdpo_components/multiruns/<time>
    vlmalign-report outputs/mdpo_components/multiruns/<time> --base .cache/vlmalign/bases/sft_shapes-<fp> \\
        --out docs/mdpo_components
    vlmalign-report outputs/dpo_beta/multiruns/<time> --metrics test/chair_i,test/cover --sort test/chair_i
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from vlmalign.errors import VlmalignError
from vlmalign.report.logs import DEFAULT_CURVES
from vlmalign.report.runs import METRICS, ReportError, find_runs, read_metrics
from vlmalign.report.table import DEFAULT_METRICS, Table, build_table
from vlmalign.utils.files import write_text_atomic


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vlmalign-report", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="multirun folders (outputs/<task>/multiruns/<time>), run directories or their parents")
    parser.add_argument("--metrics", type=_names,
                        help=f"comma-separated metrics.json keys (default: those of {','.join(DEFAULT_METRICS)} "
                             "the runs have)")
    parser.add_argument("--curves", type=_names, default=list(DEFAULT_CURVES),
                        help=f"comma-separated CSV-log columns for curves.png (default: {','.join(DEFAULT_CURVES)})")
    parser.add_argument("--base", action="append", default=[], metavar="[LABEL=]DIR",
                        help="a reference row from DIR/metrics.json, e.g. the cached SFT base (repeatable)")
    parser.add_argument("--sort", help="order rows by this metric's mean (prefix '-' for descending)")
    parser.add_argument("--format", choices=("markdown", "csv"), default="markdown", help="what to print")
    parser.add_argument("--out", type=Path, metavar="DIR", help="also write report.md, report.csv and PNG charts here")
    parser.add_argument("--title", default="", help="title of the charts")
    return parser.parse_args(argv)


def baseline(text: str) -> tuple[str, dict[str, float]]:
    """``[LABEL=]DIR``: a reference row from ``DIR/metrics.json`` (default label: the folder's name without
    its cache fingerprint, e.g. ``sft_shapes`` for ``.cache/vlmalign/bases/sft_shapes-<fingerprint>``)."""
    label, _, directory = text.rpartition("=")
    directory = Path(directory)
    metrics, problem = read_metrics(directory / METRICS)
    if metrics is None:
        raise ReportError(f"--base {text}: expected a run directory with a readable {METRICS}; {problem}")
    return label or re.sub(r"-[0-9a-f]{8,}$", "", directory.name), metrics


def write_outputs(table: Table, out: Path, curves: list[str], title: str) -> list[Path]:
    from vlmalign.report.charts import bar_chart, curve_chart  # matplotlib only when charts are asked for

    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "report.md", table.markdown())  # a report already in docs/ is replaced whole or kept
    write_text_atomic(out / "report.csv", table.csv())
    written = [out / "report.md", out / "report.csv", bar_chart(table, out / "bars.png", title)]
    curve_png = curve_chart(table, curves, out / "curves.png", title)
    return written + ([curve_png] if curve_png else [])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        runs = find_runs(args.paths)
        table = build_table(runs, args.metrics, [baseline(d) for d in args.base], args.sort)
        print(table.markdown() if args.format == "markdown" else table.csv(), end="")
        if args.out:
            for path in write_outputs(table, args.out, args.curves, args.title):
                print(f"wrote {path}", file=sys.stderr)
    except VlmalignError as error:
        print(f"vlmalign-report: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
