"""Synth²'s cost claim, measured: one synthetic sample in embedding space vs rendering + encoding pixels.

Synth² (arXiv 2403.07750, §4.4) reports that synthesising image embeddings was 25% faster than synthesising
pixels and encoding them. Here, per sample, on the shapes world:

- ``synthetic``: caption -> generator -> vision-space embedding (what a synthetic sample costs to make);
- ``pixels``: scene -> rendered image -> processor -> vision tower -> the same embedding (what a real sample
  costs to get into that space; the shapes renderer is procedural, far cheaper than a text-to-image decoder,
  so this is the pixel route's *floor*, not a diffusion model's cost).

It also times a training step of the Synth² VLM (frozen vision tower) on batches with 0, 50 and 100%
synthetic samples, since a synthetic sample also skips the tower inside the step. Prints JSON.

    python benchmarks/synth2_cost.py --generator outputs/synth2_study/generator/generator
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from functools import partial

import torch

from vlmalign.data.shapes import describe, generate_scenes, render_scene
from vlmalign.data.synth2_mix import Synth2MixDataModule
from vlmalign.models import tiny_llava_backbone
from vlmalign.models.synth2_generator import load_generator
from vlmalign.module import AlignmentModule
from vlmalign.objectives import Objective, Synth2CaptioningTerm
from vlmalign.pipelines.synth2.captions import ShapesCaptionSource
from vlmalign.pipelines.synth2.real_pairs import vision_embeddings_of


def per_sample_ms(work, samples: int, repeats: int) -> float:
    """Median over ``repeats`` of the wall time of ``work()`` (one batch of ``samples``), per sample, in ms."""
    work()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times) / samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--generator", required=True, help="a vlmalign-synth2-generator checkpoint directory")
    parser.add_argument("--base-model", default=None, help="VLM whose vision tower encodes pixels (default: the "
                        "tiny model's init; timing does not depend on the weights)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--cache-dir", default=".cache/vlmalign/models")
    args = parser.parse_args()
    torch.manual_seed(0)
    generator = load_generator(args.generator)
    backbone = tiny_llava_backbone(args.cache_dir, init_from=args.base_model).eval()
    scenes = generate_scenes("test", args.batch)
    captions = [describe(scene, random.Random(i)) for i, scene in enumerate(scenes)]

    def synthetic() -> None:
        generator.embed(captions, batch_size=args.batch)

    def pixels() -> None:
        vision_embeddings_of(backbone, [render_scene(scene, 64) for scene in scenes], batch_size=args.batch)

    def render_only() -> None:
        [render_scene(scene, 64) for scene in scenes]

    result = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "batch": args.batch,
        "synthetic_ms_per_sample": per_sample_ms(synthetic, args.batch, args.repeats),
        "pixels_ms_per_sample": per_sample_ms(pixels, args.batch, args.repeats),
        "render_only_ms_per_sample": per_sample_ms(render_only, args.batch, args.repeats),
    }
    result["synthetic_over_pixels"] = result["synthetic_ms_per_sample"] / result["pixels_ms_per_sample"]
    result["train_step_ms"] = {}
    backbone.core.model.vision_tower.requires_grad_(False)
    for ratio in (0.0, 0.5, 1.0):
        data = Synth2MixDataModule(backbone.processor, args.generator, ShapesCaptionSource(), synthetic_ratio=ratio,
                                   num_synthetic=400, num_real_scenes=200, batch_size=16)
        module = AlignmentModule(backbone.train(), Objective({"captions": Synth2CaptioningTerm()}),
                                 partial(torch.optim.AdamW, lr=1e-4))
        optimizer = module.configure_optimizers()
        batches = [b for b, _ in zip(data.train_dataloader(), range(args.train_steps + 2))]
        times = []
        for i, batch in enumerate(batches):
            start = time.perf_counter()
            loss = module.step(batch).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if i >= 2:  # warm-up
                times.append(time.perf_counter() - start)
        result["train_step_ms"][str(ratio)] = 1000 * statistics.median(times)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
