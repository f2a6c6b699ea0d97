"""Step time of the SFT main job's training step, raw loop vs Lightning, on this machine. Prints JSON.

    python benchmarks/sft_step_time.py --steps 60
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import pytorch_lightning as pl
import torch

from vlmalign.data.datamodule import ShapesDataModule
from vlmalign.models import tiny_llava_backbone
from vlmalign.models.views import view_logps
from vlmalign.module import AlignmentModule
from vlmalign.objectives import Objective, SFTTerm


def raw_loop(steps: int, cache_dir: str) -> float:
    backbone = tiny_llava_backbone(cache_dir)
    loader = iter(ShapesDataModule(backbone.processor).train_dataloader())
    optimizer = torch.optim.AdamW(backbone.parameters(), 1e-3)
    batches = [next(loader) for _ in range(steps + 5)]
    for i, batch in enumerate(batches):
        if i == 5:
            start = time.perf_counter()
        loss = -view_logps(backbone, batch, ("chosen",))["chosen"].sum.mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return (time.perf_counter() - start) / steps


def lightning_loop(steps: int, cache_dir: str, deterministic: bool) -> float:
    backbone = tiny_llava_backbone(cache_dir)
    datamodule = ShapesDataModule(backbone.processor)
    module = AlignmentModule(backbone, Objective({"sft": SFTTerm()}), optimizer=lambda p: torch.optim.AdamW(p, 1e-3))
    trainer = pl.Trainer(accelerator="cpu", max_steps=steps, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, deterministic=deterministic,
                         limit_val_batches=0, gradient_clip_val=1.0)
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--cache-dir", default=".cache/vlmalign/models")
    args = parser.parse_args()
    torch.manual_seed(0)
    result = {
        "machine": f"{platform.machine()} {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "steps": args.steps,
        "raw_step_s": raw_loop(args.steps, args.cache_dir),
        "lightning_step_s": lightning_loop(args.steps, args.cache_dir, deterministic=False),
        "lightning_deterministic_step_s": lightning_loop(args.steps, args.cache_dir, deterministic=True),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
