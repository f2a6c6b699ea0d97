"""Step time and peak memory of DPO with each reference strategy, against the one-model objectives
(SFT, nSFT) and mDPO.

Each strategy runs in its own process (peak RSS is per process). Memory is reported as the growth of
peak RSS over the process's footprint before any model is built (the interpreter and libraries are the
same for every case), plus the bytes of policy and reference weights. Prints one JSON document.

    python benchmarks/reference_strategies.py --steps 30 --batch-size 16
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

CASES = {
    "sft": ("sft", "none", False),
    "nsft": ("nsft", "none", False),  # nSFT (arXiv 2411.14797): chosen + corrective turns, one model
    "dpo_frozen": ("dpo", "frozen", False),
    "dpo_precomputed": ("dpo", "precomputed", False),
    "dpo_lora_disabled": ("dpo", "lora_disabled", True),
    "dpo_frozen_lora": ("dpo", "frozen", True),
    "mdpo_frozen": ("mdpo", "frozen", False),
    "mdpo_precomputed": ("mdpo", "precomputed", False),
}


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _mib(module) -> float:
    return sum(t.numel() * t.element_size() for t in module.state_dict().values()) / 2**20 if module else 0.0


def run_case(name: str, steps: int, batch_size: int, cache_dir: str, spec: dict) -> dict:
    import torch

    from vlmalign.data.corruptions import RandomResizedCrop
    from vlmalign.data.datamodule import ShapesDataModule
    from vlmalign.models import tiny_llava_backbone
    from vlmalign.module import AlignmentModule
    from vlmalign.objectives import AnchorTerm, ConditionalTerm, DPOTerm, NegativeSFTTerm, Objective, SFTTerm
    from vlmalign.reference import FrozenCopyReference, LoraDisabledReference, NoReference, PrecomputedReference

    objective_name, reference_name, lora = CASES[name]
    torch.manual_seed(0)
    baseline_rss = _peak_rss_mib()  # interpreter + torch + transformers, before any model exists
    backbone = tiny_llava_backbone(f"{cache_dir}/models", lora={"enabled": lora, "r": 8, "alpha": 16}, **spec)
    objective = {
        "sft": lambda: Objective({"sft": SFTTerm()}),
        "nsft": lambda: Objective({"sft": SFTTerm(), "negatives": NegativeSFTTerm()}),
        "dpo": lambda: Objective({"dpo": DPOTerm()}),
        "mdpo": lambda: Objective({"dpo": DPOTerm(), "conditional": ConditionalTerm(), "anchor": AnchorTerm()}),
    }[objective_name]()
    reference = {"none": NoReference, "frozen": FrozenCopyReference, "lora_disabled": LoraDisabledReference,
                 "precomputed": lambda: PrecomputedReference(f"{cache_dir}/reference")}[reference_name]()
    task = {"sft": "sft", "nsft": "nsft"}.get(objective_name, "preference")
    datamodule = ShapesDataModule(backbone.processor, views=objective.views, task=task, batch_size=batch_size,
                                  num_train_scenes=batch_size * (steps + 5), num_val_scenes=1,
                                  corruption=RandomResizedCrop())
    module = AlignmentModule(backbone, objective, optimizer=lambda p: torch.optim.AdamW(p, 1e-5), reference=reference)
    reference.prepare(datamodule, objective.views)
    optimizer = module.optimizer_factory([p for p in backbone.parameters() if p.requires_grad])
    loader = iter(datamodule.train_dataloader())
    times, tokens = [], 0
    for step in range(steps + 5):
        start = time.perf_counter()
        batch = next(loader)  # collation counted in the step time
        out = module.step(batch)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step >= 5:  # warm-up excluded
            times.append(time.perf_counter() - start)
            tokens += int(sum((v["labels"] != -100).sum() for v in batch["views"].values()))
    median = statistics.median(times)
    peak = _peak_rss_mib()
    return {"case": name, "objective": objective_name, "reference": reference_name, "lora": lora,
            "median_step_s": median, "pairs_per_s": batch_size / median,
            "response_tokens_per_s": tokens / sum(times),
            "peak_rss_mib": peak, "rss_growth_mib": peak - baseline_rss,
            "policy_weights_mib": _mib(backbone.model),
            "reference_weights_mib": _mib(getattr(reference, "backbone", None)),
            "final_loss": float(out.loss)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--case", choices=sorted(CASES))
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--text-hidden", type=int, default=192, help="width of the tiny model's language model")
    parser.add_argument("--text-layers", type=int, default=4)
    args = parser.parse_args()
    spec = {"text_hidden": args.text_hidden, "text_layers": args.text_layers}
    if args.case:  # child process: one case
        print(json.dumps(run_case(args.case, args.steps, args.batch_size, args.cache_dir, spec)))
        return
    import torch

    cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="vlmalign-bench-")
    results = []
    for case in CASES:
        out = subprocess.run([sys.executable, __file__, "--case", case, "--steps", str(args.steps),
                              "--batch-size", str(args.batch_size), "--cache-dir", cache_dir,
                              "--text-hidden", str(args.text_hidden), "--text-layers", str(args.text_layers)],
                             capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    sft = next(r for r in results if r["case"] == "sft")
    for r in results:
        r["rss_growth_vs_sft"] = r["rss_growth_mib"] / sft["rss_growth_mib"]
        r["step_time_vs_sft"] = r["median_step_s"] / sft["median_step_s"]
    print(json.dumps({"machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
                      "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "steps": args.steps,
                      "batch_size": args.batch_size, "model": spec, "results": results}, indent=2))


if __name__ == "__main__":
    main()
