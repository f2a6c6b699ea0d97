"""mDPO under DeepSpeed ZeRO-2 / ZeRO-3 on a randomly initialised ~1B-parameter LLaVA-style model. Prints JSON.

Built from the same config classes as the shapes world's tiny backbone (CLIP vision tower + projector + Llama),
scaled up, randomly initialised (nothing to download), trained with Lightning's DeepSpeedStrategy on
shapes-world preference pairs. Reports, per rank-0: median step time, pairs/s, peak GPU memory (allocated and
reserved), and MFU = model FLOPs per step / (step time x GPUs x peak bf16 FLOP/s).

Model FLOPs per step: 6 N T for the policy (forward + backward over the T non-padding tokens of all views,
image tokens included, counted as if unpacked) + 2 N T for the reference's forward (frozen or LoRA-disabled),
N = parameters. Attention's T^2 term is left out (sequences here are < 400 tokens). Prefix sharing runs fewer
tokens than T, so MFU counts useful work, as MFU should.

    torchrun --nproc_per_node 8 benchmarks/zero_mdpo.py --stage 2
    torchrun --nproc_per_node 8 benchmarks/zero_mdpo.py --stage 3 --reference frozen
    python benchmarks/zero_mdpo.py --cpu-smoke --stage 3   # the code path: tiny model, DeepSpeed's CPU accelerator

``--peak-tflops``: dense bf16 peak of one GPU (989 for H100 SXM, the default; H200 is the same silicon).
Status: not yet run on a GPU (docs/distributed.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SPECS = {
    # ~0.97B: CLIP-style tower 1024 x 12 (mlp 4x) at 224 px / patch 14 (256 image tokens); Llama 2048 x 12 (mlp 4x)
    "1b": dict(image_size=224, patch_size=14, vision_hidden=1024, vision_layers=12, vision_heads=16,
               text_hidden=2048, text_layers=12, text_heads=16, mlp_ratio=4, max_positions=1024),
    "tiny": dict(image_size=32, patch_size=8, vision_hidden=32, vision_layers=1, vision_heads=2,
                 text_hidden=32, text_layers=2, text_heads=2, max_positions=256),
}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", type=int, choices=(2, 3), default=3)
    parser.add_argument("--offload", action="store_true", help="ZeRO-3 with optimizer + parameter offload")
    parser.add_argument("--reference", choices=("frozen", "lora_disabled", "precomputed"), default="frozen")
    parser.add_argument("--lora", action="store_true", help="LoRA on the language model (required by lora_disabled)")
    parser.add_argument("--batch-size", type=int, default=8, help="preference pairs per GPU per step")
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny model on DeepSpeed's CPU accelerator")
    return parser.parse_args()


def main() -> None:
    args = parse()
    if args.cpu_smoke:
        os.environ["DS_ACCELERATOR"] = "cpu"
    import pytorch_lightning as pl
    import torch

    from vlmalign.data.corruptions import RandomResizedCrop
    from vlmalign.data.datamodule import ShapesDataModule
    from vlmalign.distributed import deepspeed_config
    from vlmalign.distributed.workarounds import CPUDeepSpeedStrategy, reentrant_checkpointing_for_zero3
    from vlmalign.models import load_backbone
    from vlmalign.models.loader import build_shapes_tokenizer
    from vlmalign.models.tiny_llava import TinyLlavaSpec, build_tiny_llava
    from vlmalign.module import AlignmentModule
    from vlmalign.objectives import AnchorTerm, ConditionalTerm, DPOTerm, Objective
    from vlmalign.reference import FrozenCopyReference, LoraDisabledReference, PrecomputedReference

    spec = TinyLlavaSpec(**SPECS["tiny" if args.cpu_smoke else "1b"])
    size = "tiny" if args.cpu_smoke else "1b"
    work = Path(os.environ.get("ZERO_MDPO_DIR", tempfile.gettempdir())) / f"zero_mdpo-{size}"
    if int(os.environ.get("LOCAL_RANK", "0")) == 0 and not (work / "config.json").exists():
        model, processor = build_tiny_llava(spec, build_shapes_tokenizer(), seed=0)  # random init, saved once
        model.save_pretrained(work)
        processor.save_pretrained(work)
        del model
    while not (work / "config.json").exists():  # other local ranks wait for rank 0's save
        time.sleep(1)
    dtype = "float32" if args.cpu_smoke else "bfloat16"
    backbone = load_backbone(str(work), dtype=dtype, gradient_checkpointing=args.gradient_checkpointing,
                             lora={"enabled": args.lora, "r": 16, "alpha": 32})
    if args.stage == 3:
        reentrant_checkpointing_for_zero3(backbone)
    parameters = sum(p.numel() for p in backbone.parameters())
    views = ("chosen", "rejected", "chosen_corrupted")
    data = ShapesDataModule(backbone.processor, views=views, task="preference",
                            world={"image_size": spec.image_size},
                            num_train_scenes=max(4096, args.batch_size * 64), num_val_scenes=8,
                            batch_size=args.batch_size, max_length=spec.max_positions, corruption=RandomResizedCrop(),
                            corruption_seed=0)
    reference = {"frozen": FrozenCopyReference, "lora_disabled": LoraDisabledReference}.get(args.reference)
    reference = reference() if reference else PrecomputedReference(str(work / "reference-cache"))
    objective = Objective({"dpo": DPOTerm(), "conditional": ConditionalTerm(), "anchor": AnchorTerm()})
    module = AlignmentModule(backbone, objective, optimizer=lambda p: torch.optim.AdamW(p, lr=1e-6),
                             reference=reference)

    timings: list[float] = []
    tokens: list[int] = []

    class Timer(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if not args.cpu_smoke:
                torch.cuda.synchronize()
            self.started = time.perf_counter()
            tokens.append(int(sum(batch["views"][v]["attention_mask"].sum() for v in views)))

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if not args.cpu_smoke:
                torch.cuda.synchronize()
            timings.append(time.perf_counter() - self.started)

    precision = "32-true" if args.cpu_smoke else "bf16-mixed"
    config = deepspeed_config(args.stage, precision=precision, gradient_clipping=1.0, offload_optimizer=args.offload,
                              offload_params=args.offload and args.stage == 3)
    strategy_cls = CPUDeepSpeedStrategy if args.cpu_smoke else pl.strategies.DeepSpeedStrategy
    world = int(os.environ.get("WORLD_SIZE", "1"))
    trainer = pl.Trainer(accelerator="cpu" if args.cpu_smoke else "gpu", devices=world if not args.cpu_smoke else 1,
                         strategy=strategy_cls(config=config), precision=precision,
                         max_steps=args.warmup + args.steps, logger=False, callbacks=[Timer()],
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0, num_sanity_val_steps=0, default_root_dir=str(work / "runs"))
    if args.reference == "precomputed":
        reference.prepare(data, views, device=trainer.strategy.root_device)
    if not args.cpu_smoke:
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(module, datamodule=data)
    if trainer.global_rank != 0:
        return
    timed, timed_tokens = timings[args.warmup:], tokens[args.warmup:]
    step = statistics.median(timed)
    flops_per_step = world * statistics.mean(timed_tokens) * parameters * (6 + 2)  # policy fwd+bwd + reference fwd
    result = {
        "benchmark": "zero_mdpo", "stage": args.stage, "offload": args.offload, "reference": args.reference,
        "lora": args.lora, "gradient_checkpointing": args.gradient_checkpointing, "gpus": world,
        "parameters": parameters, "batch_pairs_per_gpu": args.batch_size, "steps_timed": len(timed),
        "step_time_s": step, "step_time_p90_s": sorted(timed)[int(0.9 * (len(timed) - 1))],
        "pairs_per_s": world * args.batch_size / step, "tokens_per_step": world * statistics.mean(timed_tokens),
        "model_tflop_per_step": flops_per_step / 1e12,
        "device": "cpu" if args.cpu_smoke else torch.cuda.get_device_name(),
    }
    if not args.cpu_smoke:
        result.update(peak_gpu_memory_gib=torch.cuda.max_memory_allocated() / 2**30,
                      peak_gpu_reserved_gib=torch.cuda.max_memory_reserved() / 2**30,
                      mfu=flops_per_step / (step * world * args.peak_tflops * 1e12))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
