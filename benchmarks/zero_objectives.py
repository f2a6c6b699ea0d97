"""DPO, mDPO or GRPO under DeepSpeed ZeRO-2 / ZeRO-3 on a randomly initialised ~1B LLaVA-style model. One JSON line.

The model is ``benchmarks/random_llava.py``'s (nothing to download); the objective is the project's own
``conf/objective/<name>.yaml``, so this measures what ``vlmalign-train objective=<name>`` trains; Lightning's
DeepSpeedStrategy runs it. DPO and mDPO train on shapes-world preference pairs (AlignmentModule); GRPO is the online
trainer (OnlineRLModule: G samples per prompt with the KV cache, the exact scene reward, one clipped policy-gradient
step with a per-token KL to the reference). Rank 0 reports: median step time, pairs/s (GRPO: prompts/s and
responses/s), tokens/s, peak memory and MFU (``benchmarks/device_metrics.py``).

Model FLOPs per step (N = parameters, T = non-padding tokens of the step's training views on all ranks, image tokens
included, counted as if unpacked, so prefix sharing is not credited for tokens it did not run):

* DPO / mDPO: 6 N T for the policy + 2 N T for an online reference's forward (frozen, LoRA-disabled; a precomputed
  reference costs nothing per step).
* GRPO: 2 N per generated token (the KV-cached decode; the prompt's prefill is left out, so MFU is a lower bound),
  2 N T for the old log-probs, 2 N T for the reference (the KL term), 6 N T for the policy step.

    torchrun --nproc_per_node 8 benchmarks/zero_objectives.py --objective mdpo --stage 2
    torchrun --nproc_per_node 8 benchmarks/zero_objectives.py --objective dpo --stage 3 --reference frozen
    python benchmarks/zero_objectives.py --objective grpo --stage 2      # one GPU
    python benchmarks/zero_objectives.py --cpu-smoke --objective grpo    # the code path: tiny model, DeepSpeed on CPU

``benchmarks/gpu_suite.sh`` runs DPO, mDPO and GRPO (ZeRO-2, one GPU) and TRL's DPO peer in one go.
Status: not yet run on a GPU (docs/distributed.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import device_metrics  # noqa: E402
from benchmarks.random_llava import ensure_model, spec  # noqa: E402

OBJECTIVES = ("dpo", "mdpo", "grpo")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objective", choices=OBJECTIVES, default="mdpo")
    parser.add_argument("--stage", type=int, choices=(2, 3), default=3)
    parser.add_argument("--offload", action="store_true", help="ZeRO-3 with optimizer + parameter offload")
    parser.add_argument("--reference", choices=("frozen", "lora_disabled", "precomputed"), default="frozen")
    parser.add_argument("--lora", action="store_true", help="LoRA on the language model (required by lora_disabled)")
    parser.add_argument("--batch-size", type=int, default=8,
                        help="per GPU per step: preference pairs (DPO, mDPO) or prompts (GRPO)")
    parser.add_argument("--group-size", type=int, default=4, help="GRPO: samples per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="GRPO: sampled tokens per response at most")
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="dense bf16 peak of one GPU; default: from the GPU's name (H100/H200: 989)")
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16",
                        help="bf16: DeepSpeed's bf16 mode (bf16 weights, fp32 master weights and moments)")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--cache-dir", default=os.environ.get("VLMALIGN_BENCH_DIR", tempfile.gettempdir()),
                        help="where the random model is built once (env VLMALIGN_BENCH_DIR)")
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="tiny model on DeepSpeed's CPU accelerator (bf16 too: the GPU run's dtype path)")
    args = parser.parse_args(argv)
    problems = [f"--{name.replace('_', '-')}={getattr(args, name)} must be >= {low}"
                for name, low in (("batch_size", 1), ("group_size", 2), ("max_new_tokens", 1), ("steps", 1),
                                  ("warmup", 0)) if getattr(args, name) < low]
    if args.objective == "grpo" and args.reference == "precomputed":
        problems.append("--objective grpo needs per-token reference log-probs: --reference frozen or lora_disabled")
    if args.reference == "lora_disabled" and not args.lora:
        problems.append("--reference lora_disabled needs --lora")
    if problems:
        parser.error("; ".join(problems))
    return args


def build_objective(name: str, group_size: int):
    """``conf/objective/<name>.yaml`` built as a run builds it; GRPO's group size (interpolated from ``rollout``
    in a composed run) is set here."""
    from omegaconf import OmegaConf

    from vlmalign.utils.compose import CONFIG_DIR
    from vlmalign.utils.instantiate import build

    node = OmegaConf.load(Path(CONFIG_DIR) / "objective" / f"{name}.yaml")
    node.pop("defaults", None)  # the data/rollout/reward groups an online objective brings: built below
    if name == "grpo":
        node.terms.policy_gradient.group_size = group_size
    return build(node, "objective")


def build_reference(name: str, work: Path):
    from vlmalign.reference import FrozenCopyReference, LoraDisabledReference, PrecomputedReference

    if name == "precomputed":
        return PrecomputedReference(str(work / "reference-cache"))
    return {"frozen": FrozenCopyReference, "lora_disabled": LoraDisabledReference}[name]()


class StepLog:
    """Per timed step: wall time, training tokens, and for GRPO the rollout's time and generated tokens."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.tokens: list[int] = []
        self.rollout_seconds: list[float] = []
        self.generated: list[int] = []


def scenes_needed(args) -> int:
    """Training scenes for every step to see new ones (one spare batch: Lightning may fetch one ahead)."""
    return args.batch_size * (args.warmup + args.steps + 1)


def preference_setup(args, backbone, objective, reference, optimizer, model, log: StepLog):
    from vlmalign.data.corruptions import RandomResizedCrop
    from vlmalign.data.datamodule import ShapesDataModule
    from vlmalign.module import AlignmentModule

    views = objective.views
    data = ShapesDataModule(backbone.processor, views=views, task="preference",
                            world={"image_size": model.image_size},
                            num_train_scenes=scenes_needed(args), num_val_scenes=8,
                            batch_size=args.batch_size, max_length=model.max_positions,
                            corruption=RandomResizedCrop(), corruption_seed=0)
    module = AlignmentModule(backbone, objective, optimizer=optimizer, reference=reference)

    def count_tokens(batch: dict) -> None:
        log.tokens.append(int(sum(batch["views"][v]["attention_mask"].sum() for v in views)))

    return module, data, count_tokens


def grpo_setup(args, backbone, objective, reference, optimizer, model, log: StepLog):
    from vlmalign.data.shapes_prompts import ShapesPromptDataModule
    from vlmalign.rl.online_module import OnlineRLModule
    from vlmalign.rl.rewards import SceneReward
    from vlmalign.rl.rollout import RolloutSettings

    class TimedRollouts(OnlineRLModule):
        """The online trainer, with each step's rollout (sampling + scoring) timed and its tokens counted."""

        def score(self, prompts, step):
            device_metrics.synchronize()
            started = time.perf_counter()
            rollout, scores = super().score(prompts, step)
            device_metrics.synchronize()
            log.rollout_seconds.append(time.perf_counter() - started)
            log.generated.append(sum(len(response) for response in rollout.responses))
            log.tokens.append(int(rollout.batch["views"]["rollout"]["attention_mask"].sum()))
            return rollout, scores

    responses = args.batch_size * args.group_size
    data = ShapesPromptDataModule(batch_size=responses, group_size=args.group_size,
                                  world={"image_size": model.image_size}, num_train_scenes=scenes_needed(args),
                                  num_val_scenes=1)
    settings = RolloutSettings(group_size=args.group_size, max_new_tokens=args.max_new_tokens, batch_size=responses)
    module = TimedRollouts(backbone, objective, SceneReward(), settings, optimizer, reference=reference)
    return module, data, lambda batch: None  # tokens are counted by the rollout


def step_flops(args, parameters: int, tokens: float, generated: float) -> float:
    """Model FLOPs of one step on all ranks (module docstring)."""
    if args.objective == "grpo":  # old log-probs + reference forwards, decode, policy step
        return device_metrics.dense_flops(parameters, trained_tokens=tokens, forward_tokens=2 * tokens + generated)
    online_reference = args.reference != "precomputed"
    return device_metrics.dense_flops(parameters, trained_tokens=tokens,
                                      forward_tokens=tokens if online_reference else 0)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.cpu_smoke:
        os.environ["DS_ACCELERATOR"] = "cpu"  # before deepspeed is imported
    import pytorch_lightning as pl
    import torch

    from vlmalign.distributed import deepspeed_config
    from vlmalign.distributed.workarounds import CPUDeepSpeedStrategy, reentrant_checkpointing_for_zero3
    from vlmalign.models import load_backbone

    peak = device_metrics.peak_tflops(args.peak_tflops)  # an unknown GPU fails now, not after training
    size = "tiny" if args.cpu_smoke else "1b"
    work = Path(args.cache_dir) / f"zero_objectives-{size}"
    model_dir = ensure_model(size, args.cache_dir)  # locked: torchrun's ranks wait for the one build
    backbone = load_backbone(str(model_dir), dtype={"bf16": "bfloat16", "fp32": "float32"}[args.precision],
                             gradient_checkpointing=args.gradient_checkpointing,
                             lora={"enabled": args.lora, "r": 16, "alpha": 32})
    if args.stage == 3:
        reentrant_checkpointing_for_zero3(backbone)
    parameters = sum(p.numel() for p in backbone.parameters())
    objective = build_objective(args.objective, args.group_size)
    reference = build_reference(args.reference, work)
    setup = grpo_setup if args.objective == "grpo" else preference_setup
    log = StepLog()
    module, data, count_tokens = setup(args, backbone, objective, reference,
                                       lambda p: torch.optim.AdamW(p, lr=1e-6), spec(size), log)

    class Timer(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            device_metrics.synchronize()
            self.started = time.perf_counter()
            count_tokens(batch)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            device_metrics.synchronize()
            log.seconds.append(time.perf_counter() - self.started)

    precision = {"bf16": "bf16-mixed", "fp32": "32-true"}[args.precision]
    config = deepspeed_config(args.stage, precision=precision, gradient_clipping=1.0, offload_optimizer=args.offload,
                              offload_params=args.offload and args.stage == 3)
    strategy_cls = CPUDeepSpeedStrategy if args.cpu_smoke else pl.strategies.DeepSpeedStrategy
    world = int(os.environ.get("WORLD_SIZE", "1"))
    trainer = pl.Trainer(accelerator="cpu" if args.cpu_smoke else "gpu", devices=1 if args.cpu_smoke else world,
                         strategy=strategy_cls(config=config), precision=precision,
                         max_steps=args.warmup + args.steps, logger=False, callbacks=[Timer()],
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0, num_sanity_val_steps=0, default_root_dir=str(work / "runs"))
    if args.reference == "precomputed":
        reference.prepare(data, objective.views, device=trainer.strategy.root_device)
    device_metrics.reset_peak_memory()
    trainer.fit(module, datamodule=data)
    if trainer.global_rank != 0:
        return
    device_metrics.emit(report(args, log, parameters, world, peak))


def report(args, log: StepLog, parameters: int, world: int, peak: tuple[float, str]) -> dict:
    """Rank 0's JSON line from the timed steps (the first ``warmup`` are dropped)."""
    seconds = log.seconds[args.warmup:]
    if not seconds:
        raise RuntimeError(f"no timed steps: {len(log.seconds)} steps ran, {args.warmup} of them warm-up")
    step = statistics.median(seconds)
    tokens = world * statistics.mean(log.tokens[args.warmup:])  # per step, all ranks (each rank's batch is alike)
    generated = world * statistics.mean(log.generated[args.warmup:]) if log.generated else 0.0
    flops = step_flops(args, parameters, tokens, generated)
    peak, peak_source = peak
    result = {
        "benchmark": "zero_objectives", "objective": args.objective, "stage": args.stage, "offload": args.offload,
        "reference": args.reference, "lora": args.lora, "gradient_checkpointing": args.gradient_checkpointing,
        "precision": args.precision, "devices": world, "parameters": parameters,
        "batch_per_device": args.batch_size, "steps_timed": len(seconds), "step_time_s": step,
        "step_time_p90_s": sorted(seconds)[int(0.9 * (len(seconds) - 1))],
        "tokens_per_step": tokens, "tokens_per_s": tokens / step,
        "model_tflop_per_step": flops / 1e12, "peak_tflops": peak, "peak_tflops_source": peak_source,
        "mfu": device_metrics.mfu(flops, step, world, peak),
        **device_metrics.peak_memory(),
    }
    if args.objective == "grpo":
        rollout = statistics.median(log.rollout_seconds[args.warmup:])
        result.update(group_size=args.group_size, max_new_tokens=args.max_new_tokens,
                      prompts_per_s=world * args.batch_size / step,
                      responses_per_s=world * args.batch_size * args.group_size / step,
                      rollout_time_s=rollout, generated_tokens_per_step=generated,
                      rollout_tokens_per_s=generated / rollout)
    else:
        result.update(pairs_per_s=world * args.batch_size / step)
    return result


if __name__ == "__main__":
    main()
