"""Where a preference step's time goes: data, policy forward, reference forward, loss, backward, optimizer.

Same model, pairs and batch as ``preference_throughput.py`` (its helpers build them), one process, medians over
the timed steps, printed as JSON (milliseconds):

    python benchmarks/step_breakdown.py --objective dpo --steps 40
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time

import preference_throughput as bench

PHASES = ("data", "policy_forward", "reference_forward", "loss", "backward", "optimizer")


def breakdown(objective_name: str, steps: int, warmup: int, batch_size: int, cache_dir: str) -> dict:
    import torch

    from vlmalign.data.corruptions import RandomResizedCrop
    from vlmalign.data.datamodule import ShapesDataModule
    from vlmalign.models import load_backbone
    from vlmalign.models.logprobs import states_logps
    from vlmalign.models.views import view_states
    from vlmalign.module import AlignmentModule

    torch.manual_seed(0)
    backbone = load_backbone(bench.ensure_model("issue9", cache_dir))
    objective = bench._objective(objective_name)
    reference = bench._reference("frozen", cache_dir)
    datamodule = ShapesDataModule(backbone.processor, views=objective.views, task="preference", batch_size=batch_size,
                                  num_train_scenes=batch_size * (steps + warmup), num_val_scenes=1, max_length=1024,
                                  error_mix=bench.SHAPES_ERROR_MIX, corruption=RandomResizedCrop())
    module = AlignmentModule(backbone, objective, optimizer=lambda p: torch.optim.AdamW(p, 1e-5), reference=reference)
    optimizer = module.optimizer_factory([p for p in backbone.parameters() if p.requires_grad])
    loader = iter(datamodule.train_dataloader())
    times: dict[str, list[float]] = {phase: [] for phase in (*PHASES, "total")}
    for step in range(warmup + steps):
        marks = [time.perf_counter()]
        batch = next(loader)
        marks.append(time.perf_counter())
        logps = {v: states_logps(s) for v, s in view_states(backbone, batch, objective.views).items()}
        marks.append(time.perf_counter())
        ref = reference.logps(batch, objective.views)
        marks.append(time.perf_counter())
        out = objective(logps, ref)
        marks.append(time.perf_counter())
        out.loss.backward()
        marks.append(time.perf_counter())
        optimizer.step()
        optimizer.zero_grad()
        marks.append(time.perf_counter())
        if step >= warmup:
            for phase, start, end in zip(PHASES, marks, marks[1:]):
                times[phase].append(end - start)
            times["total"].append(marks[-1] - marks[0])
    return {phase: round(statistics.median(values) * 1000, 1) for phase, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objective", choices=("dpo", "mdpo"), default="dpo")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache_dir:
        ms = breakdown(args.objective, args.steps, args.warmup, args.batch_size, cache_dir)
    print(json.dumps({"objective": args.objective, "reference": "frozen", "batch_size": args.batch_size,
                      "steps": args.steps, "median_ms": ms, "machine": platform.machine(),
                      "date": time.strftime("%Y-%m-%d")}))


if __name__ == "__main__":
    main()
