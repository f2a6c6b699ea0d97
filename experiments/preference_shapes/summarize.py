"""Mean ± std over seeds of a multirun's members, as a markdown table (members without metrics listed).

    python experiments/preference_shapes/summarize.py outputs/mdpo/multiruns/<time> [--base <base run dir>]
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

import yaml

METRICS = ("test/chair_i", "test/chair_s", "test/cover", "test/pope/f1", "test/pope/accuracy")


def load_members(sweep_dir: Path) -> tuple[dict[str, list[dict]], list[str]]:
    """Metrics grouped by the overrides that vary across members (seed and shared overrides left out)."""
    groups, failed = defaultdict(list), []
    members = sorted(p for p in sweep_dir.iterdir() if (p / ".hydra" / "overrides.yaml").exists())
    overrides = {m: yaml.safe_load((m / ".hydra" / "overrides.yaml").read_text()) for m in members}
    shared = set.intersection(*(set(o) for o in overrides.values())) if overrides else set()
    for member in members:
        label = " ".join(o for o in overrides[member] if o not in shared and not o.startswith("seed=")) or "all"
        if not (member / "metrics.json").exists():
            failed.append(f"{member.name}: {' '.join(overrides[member])}")
            continue
        groups[label].append(json.loads((member / "metrics.json").read_text()))
    return groups, failed


def cell(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--base", type=Path, help="the SFT base run directory (its metrics.json)")
    args = parser.parse_args()
    groups, failed = load_members(args.sweep_dir)
    header = "| run | seeds | " + " | ".join(m.removeprefix("test/") for m in METRICS) + " |"
    lines = [header, "|" + "---|" * (len(METRICS) + 2)]
    if args.base:
        base = json.loads((args.base / "metrics.json").read_text())
        lines.append("| SFT base | 1 | " + " | ".join(f"{base[m]:.3f}" for m in METRICS) + " |")
    for label, runs in groups.items():
        lines.append(f"| {label} | {len(runs)} | " + " | ".join(cell([r[m] for r in runs]) for m in METRICS) + " |")
    print("\n".join(lines))
    if failed:
        print("\nMembers without metrics (failed or incomplete):\n" + "\n".join(f"- {f}" for f in failed))


if __name__ == "__main__":
    main()
