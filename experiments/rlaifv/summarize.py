"""Table of an RLAIF-V study: held-out metrics after each round, mean ± std over seeds, per condition.

    python experiments/rlaifv/summarize.py CONDITION=WORKDIR[,WORKDIR...] ... [--out docs/rlaifv.md]

Each WORKDIR is one ``vlmalign-rlaifv`` run (its ``summary.json``); the workdirs of one condition are its
seeds. Rows: condition × round (round 0 is the starting policy), with the pairs trained on so far.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

METRICS = ("test/chair_i", "test/chair_s", "test/cover", "test/mentions_per_caption")
ROUND_STATS = ("pairs", "labeler/accuracy", "labeler/false_claims_caught", "labeler/true_claims_kept")


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def load(workdir: str) -> list[dict]:
    path = Path(workdir) / "summary.json"
    if not path.exists():
        raise SystemExit(f"{path}: no summary.json (an unfinished run?)")
    return json.loads(path.read_text())


def table(conditions: dict[str, list[list[dict]]]) -> str:
    head = ["condition", "round", "seeds", "pairs (cumulative)", "CHAIR_i ↓", "CHAIR_s ↓", "Cover ↑", "mentions",
            "labeler acc.", "false claims caught", "true claims kept"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, runs in conditions.items():
        for index in range(max(len(r) for r in runs)):
            rows = [r[index] for r in runs if len(r) > index]
            cumulative = [sum(x.get("pairs", 0) for x in r[: index + 1]) for r in runs if len(r) > index]
            pairs = mean_std([float(c) for c in cumulative]) if index else "–"  # round 0: the starting policy
            cells = [name, str(rows[0]["round"]), str(len(rows)), pairs]
            cells += [mean_std([x[m] for x in rows if m in x]) for m in METRICS]
            cells += [mean_std([x[s] for x in rows if s in x]) for s in ROUND_STATS[1:]]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("conditions", nargs="+", metavar="CONDITION=WORKDIR[,WORKDIR...]")
    parser.add_argument("--out", help="also write the table to this markdown file")
    args = parser.parse_args()
    conditions = {}
    for spec in args.conditions:
        name, _, dirs = spec.partition("=")
        if not dirs:
            raise SystemExit(f"{spec!r}: expected CONDITION=WORKDIR[,WORKDIR...]")
        conditions[name] = [load(d) for d in dirs.split(",")]
    text = table(conditions)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
