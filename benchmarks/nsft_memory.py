"""nSFT's one-model memory claim (arXiv 2411.14797) across model sizes: where do the weights dominate?

nSFT trains one model; DPO with a frozen reference holds a second copy of the weights, and DPO with a
precomputed reference holds one (the reference log-probs are computed once, before training). At the shapes
world's 2 M parameters activations dominate, so the second copy hardly shows (docs/nsft.md). This script
builds the same tiny LLaVA at growing language-model widths and measures, each case in a fresh process, the
peak-RSS growth of a few training steps (AdamW, fp32) of nSFT, DPO with a frozen reference and DPO with a
precomputed reference; the crossover is the smallest size at which DPO (frozen) needs more than nSFT.

    python benchmarks/nsft_memory.py                      # sizes S, M, L (~1 M to ~150 M parameters)
    python benchmarks/nsft_memory.py --sizes S,M,L,XL     # XL ~450 M: minutes per case on 2 cores
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.preference_throughput import MODELS, Case, measure  # noqa: E402

# The language model grows; the vision side stays the benchmark model's (its weights are a rounding error here).
SIZES = {
    "S": dict(text_hidden=128, text_layers=4, text_heads=4),
    "M": dict(text_hidden=512, text_layers=8, text_heads=8),
    "L": dict(text_hidden=1024, text_layers=12, text_heads=16),
    "XL": dict(text_hidden=1536, text_layers=16, text_heads=16),
}
CASES = (("nsft", "none"), ("dpo", "frozen"), ("dpo", "precomputed"))


def size_spec(text_fields: dict):
    """The benchmark model (``MODELS["issue9"]``) with the language model of ``text_fields`` (a ``SIZES`` entry)."""
    from vlmalign.models.tiny_llava import TinyLlavaSpec

    return TinyLlavaSpec(**{**MODELS["issue9"], **text_fields})


def model_dir(size: str, cache_dir: str) -> str:
    from vlmalign.models.loader import ensure_tiny_llava_checkpoint

    return str(ensure_tiny_llava_checkpoint(f"{cache_dir}/models", size_spec(SIZES[size])))


def crossover(results: list[dict]) -> str | None:
    """The smallest size at which DPO with a frozen reference grows RSS more than nSFT."""
    for size in dict.fromkeys(r["size"] for r in results):
        by_case = {(r["objective"], r["reference"]): r for r in results if r["size"] == size}
        if by_case[("dpo", "frozen")]["rss_growth_mib"] > by_case[("nsft", "none")]["rss_growth_mib"]:
            return size
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="S,M,L", help=f"comma-separated, of {','.join(SIZES)}")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--out", help="also write the JSON document to this file")
    args = parser.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        raise SystemExit(f"--sizes: unknown {unknown}; expected some of {list(SIZES)}")
    results = []
    with tempfile.TemporaryDirectory() as cache_dir:
        for size in sizes:
            directory = model_dir(size, cache_dir)
            for objective, reference in CASES:
                case = Case(objective=objective, reference=reference, batch_size=args.batch_size, steps=args.steps,
                            warmup=1)
                result = measure(case, directory, cache_dir)
                results.append({"size": size, **SIZES[size], "params": result["trainable_params"],
                                "weights_mib": result["trainable_params"] * 4 / 2 ** 20, **result})
                print(json.dumps({k: results[-1][k] for k in ("size", "objective", "reference", "params",
                                                              "rss_growth_mib", "median_step_s")}), file=sys.stderr)
    for r in results:  # each case against nSFT at the same size
        nsft = next(x for x in results if x["size"] == r["size"] and x["objective"] == "nsft")
        r["rss_growth_vs_nsft"] = r["rss_growth_mib"] / nsft["rss_growth_mib"]
    document = {"benchmark": "nsft_memory", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
                "python": platform.python_version(),
                "batch_size": args.batch_size, "steps": args.steps, "crossover_size": crossover(results),
                "results": results}
    text = json.dumps(document, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
