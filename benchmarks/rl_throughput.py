"""Online-RL speed: vlmalign's GRPO against TRL's ``GRPOTrainer``, on the same model, prompts and reward, in one
invocation. Prints JSON (both sides, and vlmalign / TRL ratios).

    python -m benchmarks.rl_throughput --repeat 3 --out benchmarks/results/rl_throughput_cpu.json   # from the repo root

Each side trains ``warmup + steps`` GRPO steps in its own fresh process (peak RSS is per process) from the shipped
shapes-world SFT base (``base=sft_shapes``, the model a user's ``vlmalign-train objective=grpo`` starts from), on
the train prompts of ``data=shapes_prompts`` in vlmalign's loader order, with the exact scene reward, fp32, at the
same torch thread count. vlmalign runs its own path: the config ``vlmalign-train objective=grpo scheduler=constant
...`` composes, built by ``vlmalign.job.build_module`` and fitted by the project's Lightning trainer config (no
validation, logging or checkpoints). TRL's side is ``benchmarks/peers/trl_grpo.py``, whose docstring lists every
setting matched and every difference left. Both sides measure with ``benchmarks/peers/rl_timing.py``: rollout
tokens/s inside the model's ``generate``, step time between optimizer-step ends, median over the timed steps.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pytorch_lightning as pl

ROOT = Path(__file__).resolve().parent.parent
RATIO_FIELDS = ("rollout_tokens_per_s", "median_step_s", "median_rollout_s", "peak_rss_mib", "rss_growth_mib")


@dataclass(frozen=True)
class Case:
    """One benchmark setting, the same for both sides (defaults: conf/rollout/default.yaml, conf/data/shapes_prompts
    .yaml's 16 responses per step, lr 1e-5 of conf/train.yaml)."""

    prompts_per_step: int = 4
    group_size: int = 4
    max_new_tokens: int = 48
    steps: int = 20
    warmup: int = 3
    lr: float = 1e-5
    seed: int = 0
    threads: int = 2

    @property
    def num_scenes(self) -> int:
        return self.prompts_per_step * (self.warmup + self.steps)  # one epoch: every prompt once

    def overrides(self, cache_dir: str, output_dir: str) -> list[str]:
        """vlmalign-train overrides of this case; TRL's peer gets the same values as arguments."""
        return ["objective=grpo", "reference=frozen", "scheduler=constant", f"optimizer.lr={self.lr}",
                f"seed={self.seed}", f"rollout.group_size={self.group_size}",
                f"rollout.max_new_tokens={self.max_new_tokens}",
                f"data.batch_size={self.prompts_per_step * self.group_size}",  # responses per step
                f"data.num_train_scenes={self.num_scenes}", "data.num_val_scenes=1",
                f"paths.cache_dir={cache_dir}", f"paths.output_dir={output_dir}"]


def compose(case: Case, cache_dir: str, output_dir: str, extra: Sequence[str] = ()):
    """The config ``vlmalign-train`` composes for ``case``, then ``extra`` overrides (a later override of the same key
    or group wins: ``extra=["objective=ppo", "reference=none", ...]`` arranges other runs around the same case, as
    ``benchmarks/rl_memory.py`` does)."""
    from vlmalign.utils.compose import compose_train

    return compose_train([*case.overrides(cache_dir, output_dir), *extra])


class StepClock(pl.Callback):
    """Wall clock at the start of training and at the end of each step (one rollout batch: ``ppo_epochs`` optimizer
    steps, one with GRPO's default), and each step's logged loss, mean reward and mean response length."""

    def __init__(self) -> None:
        self.ends: list[float] = []
        self.logged: dict[str, list[float]] = {"train/loss": [], "train/reward": [], "train/response_length": []}

    def on_train_start(self, trainer, pl_module) -> None:
        self.ends.append(time.perf_counter())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.ends.append(time.perf_counter())
        for key, values in self.logged.items():
            values.append(float(trainer.callback_metrics[key]))


def run_vlmalign(case: Case, cache_dir: str, extra: Sequence[str] = ()) -> dict:
    """Train ``case`` with vlmalign's GRPO (or, with ``extra`` overrides, the online run they arrange) in this process
    and measure it. The config must pass ``validate_run_config``, as a ``vlmalign-train`` run's does."""
    import torch

    from benchmarks.peers.rl_timing import GenerationTimer, step_summary
    from benchmarks.process_memory import peak_rss_mib
    from vlmalign.job import build_module
    from vlmalign.pipelines.base_model import resolve_base
    from vlmalign.utils.instantiate import build
    from vlmalign.validation import validate_run_config

    torch.set_num_threads(case.threads)
    with tempfile.TemporaryDirectory() as output_dir:
        cfg = compose(case, cache_dir, output_dir, extra)
        pl.seed_everything(cfg.seed)
        # As vlmalign.job.TrainingJob.run builds a run, minus evaluation, validation, loggers and checkpoints.
        objective = build(cfg.objective, "objective")
        validate_run_config(cfg, objective)
        baseline_rss = peak_rss_mib()  # interpreter + torch + transformers + Lightning, before any model exists
        backbone = build(cfg.model, "model", **resolve_base(cfg))
        datamodule = build(cfg.data, "data", processor=backbone.processor, views=objective.views)
        module = build_module(cfg, backbone, objective)
        clock = StepClock()
        epochs = cfg.objective.terms.policy_gradient.ppo_epochs  # max_steps counts optimizer steps
        trainer = build(cfg.trainer, "trainer", callbacks=[clock], logger=False,
                        max_steps=(case.warmup + case.steps) * epochs,
                        gradient_clip_val=None,  # the online trainer clips its own gradients (as in job.py)
                        limit_val_batches=0, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
        module.prepare_rewards(datamodule)
        module.reference.prepare(datamodule, objective.views, device=trainer.strategy.root_device)
        generation = GenerationTimer(backbone.core, [backbone.processor.tokenizer.eos_token_id])
        trainer.fit(module, datamodule=datamodule)
    return {"framework": "vlmalign", **step_summary(clock.ends, case.warmup, generation),
            "baseline_rss_mib": baseline_rss, "params": sum(p.numel() for p in backbone.parameters()),
            "trainable_params": sum(p.numel() for p in backbone.parameters() if p.requires_grad),
            "losses": clock.logged["train/loss"], "rewards": clock.logged["train/reward"],
            "completion_lengths": clock.logged["train/response_length"]}


def peer_arguments(case: Case, cache_dir: str) -> list[str]:
    """TRL's peer command line: the model, world, prompt and GRPO settings of the config vlmalign's side composes
    (read from it, so a changed default moves both sides)."""
    from omegaconf import OmegaConf

    from benchmarks.peers.trl_grpo import GRPOSettings
    from vlmalign.pipelines.base_model import resolve_base

    cfg = compose(case, cache_dir, tempfile.gettempdir())
    term = cfg.objective.terms.policy_gradient
    unmatched = {key: term[key] for key, value in (("advantage", "grpo"), ("ppo_epochs", 1), ("scale_rewards", True),
                                                   ("kl_estimator", "k3"), ("kl_in_reward", None))
                 if term[key] != value}
    if unmatched or cfg.rollout.top_p != 1.0:
        raise SystemExit(f"TRL's peer runs GRPO with one update per rollout, group-scaled advantages, the k3 KL in "
                         f"the loss and top-p 1; the composed objective has {unmatched}, top_p {cfg.rollout.top_p}")
    settings = GRPOSettings(**asdict(case), beta=term.kl_coef, clip_eps=term.clip_eps,
                            temperature=cfg.rollout.temperature)
    return ["--model-dir", resolve_base(cfg)["init_from"],  # the shipped base, copied into the cache once, here
            "--world-json", json.dumps(OmegaConf.to_container(cfg.data.world, resolve=True)),
            "--prompt", cfg.data.prompt, *as_arguments(settings)]


def as_arguments(settings) -> list[str]:
    """``--name=value`` of each field of a settings dataclass (``Case``, ``GRPOSettings``): its CLI form."""
    return [f"--{name.replace('_', '-')}={value}" for name, value in asdict(settings).items()]


def _child(argv: list[str], threads: int) -> dict:
    """Run one side in a fresh process (from the repository root, so ``benchmarks`` imports) and parse its last
    stdout line."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=ROOT, env=env)
    if out.returncode:
        raise RuntimeError(f"benchmark child {argv[:2]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def vlmalign_argv(case: Case, cache_dir: str, extra: Sequence[str] = ()) -> list[str]:
    """The command line of vlmalign's side of ``case`` (``extra``: overrides after the case's, see ``compose``)."""
    return ["-m", "benchmarks.rl_throughput", "--side", "vlmalign", "--cache-dir", cache_dir, *as_arguments(case),
            *(f"--override={override}" for override in extra)]


def measure_vlmalign(case: Case, cache_dir: str, extra: Sequence[str] = ()) -> dict:
    """``run_vlmalign`` in a fresh process: its peak RSS is that run's alone."""
    return _child(vlmalign_argv(case, cache_dir, extra), case.threads)


def median_run(runs: list[dict], key: str = "median_step_s") -> dict:
    """The repeat with the median ``key`` (step time; ``rss_growth_mib`` for memory), with each run's RSS growth over
    the bare interpreter and libraries, and every repeat's step time, rollout tokens/s and RSS growth."""
    runs = [{**r, "rss_growth_mib": r["peak_rss_mib"] - r["baseline_rss_mib"]} for r in runs]
    median = sorted(runs, key=lambda r: r[key])[(len(runs) - 1) // 2]
    return {**median, **{f"{field}_repeats": [r[field] for r in runs]
                         for field in ("median_step_s", "rollout_tokens_per_s", "rss_growth_mib")}}


def ratios(ours: dict, theirs: dict) -> dict:
    """vlmalign / TRL of each headline figure (tokens/s: > 1 is vlmalign faster; times and RSS: < 1 is), and the
    step-time ratio of each round of repeats (the two sides of a round ran back to back, under similar load)."""
    rounds = zip(ours["median_step_s_repeats"], theirs["median_step_s_repeats"])
    return {**{key: ours[key] / theirs[key] for key in RATIO_FIELDS},
            "median_step_s_per_round": [a / b for a, b in rounds]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = Case()
    for field, value in asdict(defaults).items():
        parser.add_argument(f"--{field.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--repeat", type=int, default=1, help="run both sides this many times, alternating (fresh "
                        "processes); each side's run with the median step time is reported, with every repeat's")
    parser.add_argument("--no-peer", action="store_true", help="vlmalign's side only (no TRL needed)")
    parser.add_argument("--out", help="also write the JSON document to this file")
    parser.add_argument("--cache-dir", default=os.environ.get("VLMALIGN_CACHE"),
                        help="where the shipped SFT base is copied (default $VLMALIGN_CACHE, else a temp dir)")
    parser.add_argument("--side", choices=("vlmalign",), help=argparse.SUPPRESS)  # child process: one side
    parser.add_argument("--override", action="append", default=[], help=argparse.SUPPRESS)  # the side's extra
    args = parser.parse_args()
    case = Case(**{field: getattr(args, field) for field in asdict(defaults)})
    cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="vlmalign-rl-bench-")
    if args.side:
        print(json.dumps(run_vlmalign(case, cache_dir, args.override)))
        return
    import torch
    import transformers

    peer = None if args.no_peer else ["-m", "benchmarks.peers.trl_grpo", *peer_arguments(case, cache_dir)]
    ours_argv = vlmalign_argv(case, cache_dir)
    load_before = os.getloadavg()[0]  # other work on the machine: every figure below is only as good as this
    runs: dict[str, list[dict]] = {"vlmalign": [], "trl": []}
    for _ in range(args.repeat):  # alternating, so slow drift of the machine hits both sides alike
        for side, argv in (("vlmalign", ours_argv), ("trl", peer)):
            if argv is not None:
                runs[side].append(_child(argv, case.threads))
                last = runs[side][-1]
                print(f"{side}: step {last['median_step_s']:.3f} s, rollout {last['rollout_tokens_per_s']:.0f} "
                      "tokens/s", file=sys.stderr)
    results = {side: median_run(measured) for side, measured in runs.items() if measured}
    document = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "threads": case.threads,
                "torch": torch.__version__, "transformers": transformers.__version__,
                "date": time.strftime("%Y-%m-%d"), "case": asdict(case), "repeats": args.repeat,
                "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
                "vlmalign_overrides": case.overrides("$VLMALIGN_CACHE", "<temp dir>"),
                "peer_command": None if peer is None else ["python", *peer], **results}
    if "trl" in results:
        document["vlmalign_over_trl"] = ratios(results["vlmalign"], results["trl"])
    text = json.dumps(document, indent=2)
    print(text)
    if args.out:  # stdout may also carry library warnings printed at import time; the file holds the JSON only
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
