"""Branch-Train-MiX's cost: the merged MoE against the dense seed, one SFT + load-balancing training step each.
Prints JSON.

The dense model is the shapes-world tiny LLaVA at its configured size (conf/model/tiny_llava.yaml: Llama 192 × 4
layers, FFN 384; its vision tower un-pre-trained, since timing does not depend on the weights). The MoE models are
the same seed upcycled to N experts with top-k routing (a BTX merge of trained experts has the same shapes and
cost). Each case runs in a fresh process (peak RSS is per process): 3 warm-up steps, then ``--steps`` timed steps
of batch ``--batch`` shapes SFT examples (mixture of captions and questions), AdamW; the dense model trains with
SFT alone, the MoE models with SFT + the load-balancing term (router logits recorded).

Parameters: total, and active per token = total − (N − k) × one expert's FFN per MoE layer (the experts a token
does not use).

    python benchmarks/btx_cost.py --experts 4 --top-k 1,2,4
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
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from benchmarks.process_memory import peak_rss_mib  # noqa: E402


def build_dense(directory: Path) -> Path:
    from vlmalign.models.loader import build_shapes_tokenizer
    from vlmalign.models.tiny_llava import TinyLlavaSpec, build_tiny_llava

    spec = TinyLlavaSpec(image_size=96, patch_size=32, vision_hidden=128, vision_layers=3, vision_heads=4,
                         text_hidden=192, text_layers=4, text_heads=4, mlp_ratio=2, max_positions=256)
    model, processor = build_tiny_llava(spec, build_shapes_tokenizer(), seed=0)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def parameters(model) -> dict:
    total = sum(p.numel() for p in model.parameters())
    text = model.config.text_config
    if getattr(text, "num_local_experts", None) is None:
        return {"total_params": total, "active_params": total}
    per_expert = 3 * text.hidden_size * text.intermediate_size  # gate, up, down
    unused = (text.num_local_experts - text.num_experts_per_tok) * per_expert * text.num_hidden_layers
    return {"total_params": total, "active_params": total - unused}


def time_case(path: str, moe: bool, steps: int, batch: int) -> dict:
    from vlmalign.data.datamodule import ShapesDataModule
    from vlmalign.models import load_backbone
    from vlmalign.module import AlignmentModule
    from vlmalign.objectives import LoadBalancingTerm, Objective, SFTTerm

    torch.manual_seed(0)
    backbone = load_backbone(path)
    terms = {"sft": SFTTerm(), **({"load_balancing": LoadBalancingTerm()} if moe else {})}
    module = AlignmentModule(backbone, Objective(terms), optimizer=lambda p: torch.optim.AdamW(p, 1e-4))
    loader = iter(ShapesDataModule(backbone.processor, batch_size=batch, world={"image_size": 96}).train_dataloader())
    optimizer = torch.optim.AdamW(backbone.parameters(), 1e-4)
    batches = [next(loader) for _ in range(steps + 3)]
    times = []
    for i, item in enumerate(batches):
        start = time.perf_counter()
        module.step(item).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if i >= 3:
            times.append(time.perf_counter() - start)
    return {**parameters(backbone.core), "step_s_median": statistics.median(times),
            "step_s_mean": statistics.fmean(times),
            "peak_rss_mib": peak_rss_mib()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--experts", type=int, default=4)
    parser.add_argument("--top-k", default="1,2,4", help="comma-separated k values")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: time one model in this process
    parser.add_argument("--moe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(time_case(args.case, args.moe, args.steps, args.batch)))
        return
    from vlmalign.pipelines.btx.merge import btx_merge

    root = Path(tempfile.mkdtemp(prefix="btx-cost-"))
    seed = build_dense(root / "dense")
    cases = {"dense": (seed, False)}
    for k in (int(v) for v in args.top_k.split(",")):
        name = f"moe_{args.experts}x_top{k}"
        cases[name] = (btx_merge(str(seed), root / name, method="upcycle", num_experts=args.experts, top_k=k), True)
    results = {}
    for name, (path, moe) in cases.items():
        command = [sys.executable, __file__, "--case", str(path), "--steps", str(args.steps), "--batch",
                   str(args.batch), *(["--moe"] if moe else [])]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    dense = results["dense"]
    for result in results.values():
        result["step_time_vs_dense"] = result["step_s_median"] / dense["step_s_median"]
        result["peak_rss_vs_dense"] = result["peak_rss_mib"] / dense["peak_rss_mib"]
    print(json.dumps({"machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
                      "date": date.today().isoformat(), "batch": args.batch, "timed_steps": args.steps,
                      "cases": results}, indent=2))


if __name__ == "__main__":
    main()
