"""The BTX study's table from ``scores.jsonl`` files (experiments/btx/domain_accuracy.py output), one per seed:
mean ± std over seeds per model and metric, as markdown.

    python experiments/btx/summarise.py outputs/btx_study/seed*/scores.jsonl
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

NAMES = {"branch/0/model": "expert: captioning", "branch/1/model": "expert: counting",
         "branch/2/model": "expert: spatial",
         "branch/3/model": "expert: attribute_existence", "btm": "BTM (average)", "upcycled": "upcycled, not trained",
         "btx_merged": "BTX, before fine-tune", "dense/model": "dense, matched compute",
         "upcycle_finetuned/model": "sparse upcycling, matched compute", "btx_finetuned/model": "BTX, fine-tuned",
         "btx_act_merged": "BTX (activation router), before fine-tune",
         "btx_act_finetuned/model": "BTX (activation router), fine-tuned"}
PER_DOMAIN = ("captioning/exact_match", "counting/accuracy", "spatial/accuracy", "attribute_existence/accuracy")
DOMAIN_MEAN = "mean over domains"  # each domain's headline score, averaged (the paper's "average" column)
METRICS = ("captioning/exact_match", "captioning/chair_i", "captioning/cover", "counting/accuracy",
           "spatial/accuracy", "attribute_existence/accuracy", "pope/random/accuracy", "pope/adversarial/accuracy")


def label(path: str) -> str:
    return next((name for suffix, name in NAMES.items() if path.rstrip("/").endswith(suffix)), "seed (SFT base)")


def main() -> None:
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for file in sys.argv[1:]:
        for line in Path(file).read_text().splitlines():
            row = json.loads(line)
            for metric in METRICS:
                if metric in row:  # scores from before POPE was added have none
                    values[label(row["model"])][metric].append(row[metric])
            values[label(row["model"])][DOMAIN_MEAN].append(sum(row[m] for m in PER_DOMAIN) / len(PER_DOMAIN))
    columns = (*METRICS, DOMAIN_MEAN)
    print("| model | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for model, metrics in values.items():
        cells = []
        for metric in columns:
            xs = metrics[metric]
            if not xs:
                cells.append("–")
                continue
            cells.append(f"{statistics.fmean(xs):.3f}" + (f" ± {statistics.stdev(xs):.3f}" if len(xs) > 1 else ""))
        print(f"| {model} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
