"""Preference-training throughput and memory: vlmalign's objectives and reference strategies, and TRL.

One case = N timed training steps (after warm-up) of one objective with one reference strategy on a
fixed tiny LLaVA and fixed shapes-world preference pairs, fp32, in its own process (peak RSS is per
process). Step time includes fetching and collating the batch. Prints JSON.

    python benchmarks/preference_throughput.py --objective dpo --reference frozen --peer trl
    python benchmarks/preference_throughput.py --suite targets --peer trl     # the issue-9 target table
    python benchmarks/preference_throughput.py --suite targets --peer trl --group-by-length   # both sides grouped
    python benchmarks/preference_throughput.py --suite levers                 # each speed lever on and off
    python benchmarks/preference_throughput.py --suite scaling                # batch size x response length
    python benchmarks/preference_throughput.py --suite references --model calibration --batch-size 16

``--model issue9`` (default) is the fixed benchmark model: vision hidden 64, 2 layers, 64x64 images,
patch 8; Llama hidden 128, 4 layers, 4 heads. ``calibration`` is the shapes world's default backbone.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.process_memory import peak_rss_mib  # noqa: E402

MODELS = {
    "issue9": dict(image_size=64, patch_size=8, vision_hidden=64, vision_layers=2, vision_heads=4,
                   text_hidden=128, text_layers=4, text_heads=4, max_positions=512),
    "calibration": dict(max_positions=512),
}
OBJECTIVES = ("sft", "nsft", "dpo", "mdpo")
SHAPES_ERROR_MIX = {"shape": 1.0}  # as conf/data/shapes_preference.yaml
REFERENCES = ("none", "frozen", "lora", "precomputed")


@dataclass(frozen=True)
class Case:
    objective: str = "dpo"
    reference: str = "frozen"
    batch_size: int = 8
    steps: int = 20
    warmup: int = 3
    share_prefix: bool = True
    encode_once: bool = False
    response_repeat: int = 1  # each response's tokens k times (then EOS): longer responses, same prompts
    lora: bool = False  # train LoRA adapters (r 8) on the language model instead of every weight
    group_by_length: bool = False  # data.group_by_length (TRL: train_sampling_strategy=group_by_length)
    lr: float = 1e-5

    def __post_init__(self) -> None:
        if self.reference == "lora" and not self.lora:
            raise SystemExit("--reference lora (adapters disabled) needs --lora")

    @property
    def num_pairs(self) -> int:
        return self.batch_size * (self.steps + self.warmup)


def _from_conf(group: str, option: str, **overrides):
    """Build ``conf/<group>/<option>.yaml`` through the project's one instantiate path, so every case measures
    exactly the objective or reference a user's run gets (``overrides`` replace values, e.g. cache paths)."""
    from omegaconf import OmegaConf

    from vlmalign.utils.compose import CONFIG_DIR
    from vlmalign.utils.instantiate import build

    node = OmegaConf.merge(OmegaConf.load(Path(CONFIG_DIR) / group / f"{option}.yaml"), overrides)
    return build(node, group)


def _objective(name: str):
    return _from_conf("objective", name)


def _reference(name: str, cache_dir: str):
    if name == "precomputed":
        return _from_conf("reference", name, cache_dir=f"{cache_dir}/reference")
    return _from_conf("reference", {"lora": "lora_disabled"}.get(name, name))


def repeated_responses(dataset, times: int):
    """The dataset with every response's tokens repeated ``times`` times (one EOS at the end): a longer-
    response workload with the same images and prompts, for the scaling table."""
    from dataclasses import replace as replace_example

    from torch.utils.data import Dataset

    class Repeated(Dataset):
        def __len__(self):
            return len(dataset)

        def __getitem__(self, index):
            example = dataset[index]
            responses = {k: ids[:-1] * times + ids[-1:] for k, ids in example.responses.items()}
            return replace_example(example, responses=responses)

    return Repeated()


def run_case(case: Case, model_dir: str, cache_dir: str) -> dict:
    """Train ``case`` in this process and measure it."""
    import torch

    from vlmalign.data.corruptions import RandomResizedCrop
    from vlmalign.data.datamodule import ShapesDataModule
    from vlmalign.models import load_backbone
    from vlmalign.module import AlignmentModule

    torch.manual_seed(0)
    baseline_rss = peak_rss_mib()  # interpreter + torch + transformers, before any model exists
    backbone = load_backbone(model_dir, lora={"enabled": case.lora, "r": 8, "alpha": 16})
    objective = _objective(case.objective)
    reference = _reference(case.reference, cache_dir)
    task = "nsft" if case.objective == "nsft" else "preference"  # SFT: the chosen responses of the same pairs
    # The pairs of conf/data/shapes_preference.yaml, which benchmarks/peers/trl_dpo.py's shapes_pairs gives TRL.
    datamodule = ShapesDataModule(backbone.processor, views=objective.views, task=task, batch_size=case.batch_size,
                                  num_train_scenes=case.num_pairs, num_val_scenes=1, max_length=1024,
                                  error_mix=SHAPES_ERROR_MIX, corruption=RandomResizedCrop(),
                                  group_by_length=case.group_by_length)
    if case.response_repeat > 1:
        datamodule.train_set = repeated_responses(datamodule.train_set, case.response_repeat)
    preprocess_s = 0.0
    if case.encode_once:  # encode every pair before timing, as TRL's dataset.map does in its __init__
        start = time.perf_counter()
        datamodule.encode_once()
        for index in range(len(datamodule.train_set)):
            datamodule.train_set[index]
        preprocess_s = time.perf_counter() - start
    module = AlignmentModule(backbone, objective, optimizer=lambda p: torch.optim.AdamW(p, case.lr),
                             reference=reference, share_prefix=case.share_prefix)
    start = time.perf_counter()
    reference.prepare(datamodule, objective.views)
    precompute_s = time.perf_counter() - start
    optimizer = module.optimizer_factory([p for p in backbone.parameters() if p.requires_grad])
    loader = iter(datamodule.train_dataloader())
    times, tokens, first_loss = [], 0, None
    for step in range(case.warmup + case.steps):
        start = time.perf_counter()
        batch = next(loader)  # fetching and collating the batch is part of the step
        out = module.step(batch)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        elapsed = time.perf_counter() - start
        first_loss = float(out.loss) if first_loss is None else first_loss
        if step >= case.warmup:
            times.append(elapsed)
            tokens += int(sum((v["labels"] != -100).sum() for v in batch["views"].values()))
    median = statistics.median(times)
    peak = peak_rss_mib()
    return {**asdict(case), "framework": "vlmalign", "median_step_s": median,
            "pairs_per_s": case.batch_size / median, "response_tokens_per_s": tokens / sum(times),
            "peak_rss_mib": peak, "rss_growth_mib": peak - baseline_rss, "first_loss": first_loss,
            "final_loss": float(out.loss), "precompute_s": precompute_s, "preprocess_s": preprocess_s,
            "trainable_params": sum(p.numel() for p in backbone.parameters() if p.requires_grad)}


def _child(argv: list[str]) -> dict:
    """Run one measurement in a fresh process and parse its last stdout line."""
    out = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    if out.returncode:
        raise RuntimeError(f"benchmark child {argv} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(case: Case, model_dir: str, cache_dir: str) -> dict:
    return _child([__file__, "--case-json", json.dumps(asdict(case)), "--model-dir", model_dir,
                   "--cache-dir", cache_dir])


def measure_trl(case: Case, model_dir: str, cache_dir: str) -> dict:
    """TRL's DPOTrainer on the same weights, pairs, batch and precision (benchmarks/peers/trl_dpo.py)."""
    if case.objective != "dpo" or case.reference not in ("frozen", "precomputed"):
        raise SystemExit("--peer trl compares DPO with reference=frozen (TRL's model copy) or precomputed")
    argv = ["-m", "benchmarks.peers.trl_dpo", "--model-dir", model_dir, "--num-pairs", str(case.num_pairs),
            "--batch-size", str(case.batch_size), "--steps", str(case.steps), "--warmup", str(case.warmup),
            "--output-dir", f"{cache_dir}/trl"]
    argv += ["--precompute-ref"] if case.reference == "precomputed" else []
    argv += ["--group-by-length"] if case.group_by_length else []
    result = _child(argv)
    return {**result, "framework": "trl", "objective": "dpo", "reference": case.reference,
            "batch_size": case.batch_size}


def suite_cases(name: str, base: Case) -> list[Case]:
    if name == "targets":
        return [replace(base, objective=o, reference=r, lora=lora) for o, r, lora in (
            ("sft", "none", False), ("dpo", "frozen", False), ("dpo", "precomputed", False),
            ("mdpo", "frozen", False), ("mdpo", "precomputed", False), ("nsft", "none", False),
            ("sft", "none", True), ("dpo", "lora", True))]
    if name == "levers":
        return [replace(base, objective=o, reference="frozen", share_prefix=share, encode_once=once)
                for o in ("dpo", "mdpo") for share, once in ((False, False), (True, False), (True, True))]
    if name == "scaling":
        return [replace(base, objective=o, reference=r, batch_size=b, response_repeat=k)
                for k in (1, 2, 4) for b in (4, 8, 16, 32) for o, r in (("sft", "none"), ("dpo", "precomputed"))]
    if name == "references":  # docs/preference.md's table on the calibration model
        return [replace(base, objective=o, reference=r, lora=lora) for o, r, lora in (
            ("sft", "none", False), ("nsft", "none", False), ("dpo", "frozen", False), ("dpo", "precomputed", False),
            ("dpo", "lora", True), ("dpo", "frozen", True), ("mdpo", "frozen", False), ("mdpo", "precomputed", False))]
    raise SystemExit(f"unknown suite {name!r}")


def ensure_model(model: str, cache_dir: str) -> str:
    from vlmalign.models.loader import ensure_tiny_llava_checkpoint
    from vlmalign.models.tiny_llava import TinyLlavaSpec

    return str(ensure_tiny_llava_checkpoint(f"{cache_dir}/models", TinyLlavaSpec(**MODELS[model])))


def add_ratios(results: list[dict]) -> None:
    """Relative figures the targets are stated in: against SFT (memory, time) and against TRL (speed)."""
    def find(**match):
        return next((r for r in results if all(r.get(k) == v for k, v in match.items())), None)

    for r in results:
        sft = find(framework="vlmalign", objective="sft", batch_size=r["batch_size"],
                   response_repeat=r.get("response_repeat", 1), lora=r.get("lora", False))
        dpo = find(framework="vlmalign", objective="dpo", reference=r["reference"], batch_size=r["batch_size"],
                   share_prefix=r.get("share_prefix"), encode_once=r.get("encode_once"))
        if sft and r["framework"] == "vlmalign":
            r["peak_rss_vs_sft"] = r["peak_rss_mib"] / sft["peak_rss_mib"]
            r["rss_growth_vs_sft"] = r["rss_growth_mib"] / sft["rss_growth_mib"]
        if dpo and r["objective"] == "mdpo":
            r["step_time_vs_dpo"] = r["median_step_s"] / dpo["median_step_s"]
        if r["framework"] == "trl":
            for mode in ("frozen", "precomputed", "lora"):
                ours = find(framework="vlmalign", objective="dpo", reference=mode, batch_size=r["batch_size"],
                            share_prefix=True, encode_once=False)
                if ours and (mode == r["reference"] or (mode == "lora" and r["reference"] == "precomputed")):
                    r[f"vlmalign_{mode}_speedup"] = ours["pairs_per_s"] / r["pairs_per_s"]


def median_run(measured: list[dict]) -> dict:
    """The repeat with the median throughput, plus every repeat's pairs/s (the spread across processes)."""
    ranked = sorted(measured, key=lambda r: r["pairs_per_s"])
    return {**ranked[(len(ranked) - 1) // 2], "pairs_per_s_repeats": [r["pairs_per_s"] for r in measured]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=("targets", "levers", "scaling", "references"))
    parser.add_argument("--objective", choices=OBJECTIVES, default="dpo")
    parser.add_argument("--reference", choices=REFERENCES, default="frozen")
    parser.add_argument("--peer", choices=("trl",), help="also run TRL's DPOTrainer on the same model and pairs")
    parser.add_argument("--model", choices=sorted(MODELS), default="issue9")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-share-prefix", action="store_true")
    parser.add_argument("--encode-once", action="store_true")
    parser.add_argument("--response-repeat", type=int, default=1)
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters (needed by --reference lora)")
    parser.add_argument("--group-by-length", action="store_true", help="batch pairs of similar length together "
                        "(data.group_by_length; TRL's peer gets transformers' LengthGroupedSampler)")
    parser.add_argument("--repeat", type=int, default=1, help="run every case this many times (fresh processes); "
                        "the run with the median pairs/s is reported, with all repeats' pairs/s")
    parser.add_argument("--out", help="also write the JSON document to this file")
    parser.add_argument("--cache-dir", default=None, help="where the model and reference caches go (temp dir)")
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--case-json", help=argparse.SUPPRESS)  # child process: one case
    args = parser.parse_args()
    if args.case_json:
        print(json.dumps(run_case(Case(**json.loads(args.case_json)), args.model_dir, args.cache_dir)))
        return
    import torch

    cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="vlmalign-bench-")
    model_dir = ensure_model(args.model, cache_dir)
    base = Case(objective=args.objective, reference=args.reference, batch_size=args.batch_size, steps=args.steps,
                warmup=args.warmup, share_prefix=not args.no_share_prefix, encode_once=args.encode_once,
                response_repeat=args.response_repeat, lora=args.lora, group_by_length=args.group_by_length)
    cases = suite_cases(args.suite, base) if args.suite else [base]
    runs: list[tuple] = [(measure, case) for case in cases]
    if args.peer == "trl":
        runs += [(measure_trl, c) for c in cases if c.objective == "dpo" and c.reference in ("frozen", "precomputed")
                 and not c.lora and c.share_prefix and not c.encode_once and c.response_repeat == 1]
    repeats: dict[int, list[dict]] = {}
    for _ in range(args.repeat):  # round robin, so slow drift of the machine hits every case alike
        for index, (run, case) in enumerate(runs):
            repeats.setdefault(index, []).append(run(case, model_dir, cache_dir))
            last = repeats[index][-1]
            print(f"{last['framework']} {case.objective}/{case.reference}: {last['pairs_per_s']:.1f} pairs/s",
                  file=sys.stderr)
    results = [median_run(measured) for measured in repeats.values()]
    add_ratios(results)
    document = json.dumps({"machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
                           "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "model": args.model,
                           "spec": MODELS[args.model], "results": results}, indent=2)
    print(document)
    if args.out:  # stdout may also carry library warnings printed at import time; the file holds the JSON only
        Path(args.out).write_text(document + "\n")


if __name__ == "__main__":
    main()
