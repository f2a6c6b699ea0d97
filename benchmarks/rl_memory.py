"""Online RL's memory of each arrangement: what do the reference, the critic and the reward model cost, and from
which model size on do they dominate?

An online run holds 1 to 4 models: the policy; a frozen reference copy (``reference=frozen``; with LoRA,
``reference=lora_disabled`` is the policy with its adapters off, no copy); PPO's critic, a value head on the
policy's trunk (``critic=trunk``) or a trained model of its own (``critic=separate``: weights, gradients and AdamW
state again); a reward model (``reward=model``). Each arrangement runs, in a fresh process, vlmalign's own online
path (``benchmarks/rl_throughput.py``'s ``run_vlmalign``: the composed ``vlmalign-train objective=...`` config,
checked by ``validate_run_config``, built by ``vlmalign.job.build_module``, fitted by Lightning) for two rollout
steps without warm-up (fp32, AdamW, the objectives' own settings: PPO takes 4 optimizer steps per rollout), and
reports the process's peak-RSS growth over the loaded libraries. The models are ``benchmarks/nsft_memory.py``'s:
the benchmark tiny LLaVA with the language model at sizes S, M, L (~0.8 M, ~21 M, ~127 M parameters), from random
weights (``~base``: no SFT base to copy); the reward model is a ``save_reward_model`` export of the same backbone.
Glibc's allocator runs with a fixed mmap threshold by default, so that peaks repeat (``EXACT_MMAP_THRESHOLD``).

    python -m benchmarks.rl_memory --sizes S,M --repeat 2 --out benchmarks/results/rl_memory_cpu.json  # repo root
    python -m benchmarks.rl_memory --sizes S,M --repeat 3 --mmap-threshold 0    # glibc's default allocator
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.nsft_memory import SIZES, size_spec  # noqa: E402
from benchmarks.rl_throughput import Case, compose, measure_vlmalign, median_run  # noqa: E402


@dataclass(frozen=True)
class Arrangement:
    models: int  # whole models resident (policy, reference copy, critic, reward model)
    resident: str
    overrides: tuple[str, ...]  # after the case's GRPO overrides; {reward_model} is the size's reward model


PPO = ("objective=ppo", "reference=frozen")
SEPARATE_CRITIC = (*PPO, "objective.terms.policy_gradient.critic=separate")
ARRANGEMENTS = {
    "grpo_no_reference": Arrangement(1, "policy", ("objective.terms.policy_gradient.kl_coef=0", "reference=none")),
    "grpo_lora": Arrangement(1, "policy with LoRA adapters; the reference is the same model, adapters off",
                             ("model.lora.enabled=true", "reference=lora_disabled")),
    "grpo_frozen": Arrangement(2, "policy + frozen reference", ("reference=frozen",)),
    "ppo_trunk": Arrangement(2, "policy with a value head + frozen reference", PPO),
    "ppo_separate": Arrangement(3, "policy + frozen reference + critic", SEPARATE_CRITIC),
    "ppo_separate_reward_model": Arrangement(4, "policy + frozen reference + critic + reward model",
                                             (*SEPARATE_CRITIC, "reward=model", "reward.path={reward_model}")),
}
CHAIN = ("grpo_no_reference", "grpo_frozen", "ppo_separate", "ppo_separate_reward_model")  # 1, 2, 3, 4 models
# glibc's allocator serves blocks of at least this many bytes by mmap and returns them to the OS when freed, so RSS
# follows the live tensors and a run's peak repeats to ~1 MiB. Under its default (a threshold that rises as blocks are
# freed, freed memory kept for reuse) the peaks at size M were 160-770 MiB higher and varied by up to 260 MiB across
# three runs (2026-12-07, benchmarks/results/rl_memory_cpu_glibc_default.json): more than a reward model's copy of the
# weights, and enough to rank LoRA above full fine-tuning. 0: the allocator's default.
EXACT_MMAP_THRESHOLD = 128 * 1024
# The rollout batch of conf/data/shapes_prompts.yaml and conf/rollout/default.yaml (16 responses of <= 48 tokens),
# two steps without warm-up (memory, not time), one thread.
MEMORY_CASE = Case(steps=2, warmup=0, threads=1)


def model_overrides(text_fields: dict) -> list[str]:
    """The overrides that make ``vlmalign-train``'s tiny LLaVA the benchmark model with this language model, built
    from random weights (no SFT base)."""
    def value(v) -> str:
        return str(v).lower() if isinstance(v, bool) else str(v)

    return ["~base", *(f"++model.{key}={value(v)}" for key, v in size_spec(text_fields).to_dict().items())]


def prepare_size(case: Case, cache_dir: str, overrides: list[str], reward_model_dir: Path) -> dict:
    """Build the size's checkpoint into the cache here (a run that built it would count the build in its peak RSS)
    and save a reward model over it; returns its parameter count."""
    from vlmalign.models.reward_model import RewardModel, save_reward_model
    from vlmalign.utils.instantiate import build

    with tempfile.TemporaryDirectory() as output_dir:
        cfg = compose(case, cache_dir, output_dir, overrides)
    backbone = build(cfg.model, "model")
    save_reward_model(RewardModel(backbone, seed=cfg.seed), reward_model_dir)
    params = sum(p.numel() for p in backbone.parameters())
    del backbone
    gc.collect()
    return {"params": params}


def check(case: Case, cache_dir: str, extra: list[str]) -> None:
    """The arrangement composes and passes the run-config check (before anything is measured)."""
    from vlmalign.utils.instantiate import build
    from vlmalign.validation import validate_run_config

    with tempfile.TemporaryDirectory() as output_dir:
        cfg = compose(case, cache_dir, output_dir, extra)
        validate_run_config(cfg, build(cfg.objective, "objective"))


@contextmanager
def malloc_mmap_threshold(threshold: int):
    """Processes started inside run glibc's allocator with this mmap threshold (``EXACT_MMAP_THRESHOLD``; 0: its
    default)."""
    key, before = "MALLOC_MMAP_THRESHOLD_", os.environ.get("MALLOC_MMAP_THRESHOLD_")
    if threshold:
        os.environ[key] = str(threshold)
    else:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def measure(sizes: dict[str, dict], names: list[str], case: Case, cache_dir: str, repeat: int = 1,
            mmap_threshold: int = EXACT_MMAP_THRESHOLD) -> list[dict]:
    """Every arrangement of ``names`` at every size (name: language-model fields, as ``SIZES``), each run in a fresh
    process, ``repeat`` rounds over the arrangements of a size (the run of median RSS growth reported, with every
    round's); sizes in order, each size's configs checked before its first measurement."""
    with malloc_mmap_threshold(mmap_threshold):
        results = _measure(sizes, names, case, cache_dir, repeat)
    compare(results)
    return results


def _measure(sizes: dict[str, dict], names: list[str], case: Case, cache_dir: str, repeat: int) -> list[dict]:
    results = []
    for size, text_fields in sizes.items():
        overrides = model_overrides(text_fields)
        reward_model = Path(cache_dir) / "reward_models" / size
        prepared = prepare_size(case, cache_dir, overrides, reward_model)
        arranged = {name: [*overrides, *(o.format(reward_model=reward_model) for o in ARRANGEMENTS[name].overrides)]
                    for name in names}
        for extra in arranged.values():
            check(case, cache_dir, extra)
        runs: dict[str, list[dict]] = {name: [] for name in names}
        for _ in range(repeat):  # round robin, so a slow drift of the machine meets every arrangement alike
            for name, extra in arranged.items():
                start = time.perf_counter()
                run = measure_vlmalign(case, cache_dir, extra)
                runs[name].append({**run, "case_wall_s": time.perf_counter() - start})
                last = runs[name][-1]
                print(f"{size} {name}: RSS growth {last['peak_rss_mib'] - last['baseline_rss_mib']:.0f} MiB, "
                      f"{last['case_wall_s']:.0f} s", file=sys.stderr)
        for name in names:
            arrangement = ARRANGEMENTS[name]
            results.append({"size": size, **text_fields, "arrangement": name, "models": arrangement.models,
                            "resident": arrangement.resident, "weights_mib": prepared["params"] * 4 / 2 ** 20,
                            **median_run(runs[name], key="rss_growth_mib")})
    return results


def compare(results: list[dict]) -> None:
    """Each result against the leanest arrangement of its size: the ratio of RSS growths, and the extra growth in
    copies of the weights (a frozen copy is ~1, a trained critic ~4: weights, gradients, two AdamW moments)."""
    for r in results:
        same_size = [x for x in results if x["size"] == r["size"]]
        leanest = min(same_size, key=lambda x: x["rss_growth_mib"])
        r["leanest"] = leanest["arrangement"]
        r["rss_growth_vs_leanest"] = r["rss_growth_mib"] / leanest["rss_growth_mib"]
        r["extra_over_leanest_mib"] = r["rss_growth_mib"] - leanest["rss_growth_mib"]
        r["extra_in_weight_copies"] = r["extra_over_leanest_mib"] / r["weights_mib"]


def crossover(results: list[dict]) -> str | None:
    """The smallest size at which the extra models dominate: the most models of ``CHAIN`` measured (four: reference,
    critic and reward model beside the policy) grow peak RSS by more over the one-model run than that run's own
    growth. None if no size does (or fewer than two of ``CHAIN`` were measured)."""
    for size in dict.fromkeys(r["size"] for r in results):
        growth = {r["arrangement"]: r["rss_growth_mib"] for r in results if r["size"] == size}
        chain = [growth[name] for name in CHAIN if name in growth]
        if len(chain) > 1 and chain[-1] - chain[0] > chain[0]:
            return size
    return None


def document(results: list[dict], sizes: dict[str, dict], case: Case, load_before: float, repeat: int = 1,
             mmap_threshold: int = EXACT_MMAP_THRESHOLD) -> dict:
    import torch
    import transformers

    return {"benchmark": "rl_memory", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__, "threads": case.threads,
            "case": asdict(case), "repeats": repeat, "malloc_mmap_threshold": mmap_threshold or None,
            "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
            "sizes": {size: size_spec(fields).to_dict() for size, fields in sizes.items()},
            "arrangements": {name: asdict(ARRANGEMENTS[name]) for name in dict.fromkeys(
                r["arrangement"] for r in results)},
            "crossover_size": crossover(results), "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="S,M", help=f"comma-separated, of {','.join(SIZES)}")
    parser.add_argument("--arrangements", default=",".join(ARRANGEMENTS),
                        help=f"comma-separated, of {','.join(ARRANGEMENTS)}")
    for field, value in asdict(MEMORY_CASE).items():
        parser.add_argument(f"--{field.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--repeat", type=int, default=1, help="rounds over the arrangements of each size (fresh "
                        "processes); each arrangement's run of median RSS growth is reported, with every round's")
    parser.add_argument("--mmap-threshold", type=int, default=EXACT_MMAP_THRESHOLD,
                        help="glibc's MALLOC_MMAP_THRESHOLD_ of the measured processes (0: the allocator's default)")
    parser.add_argument("--cache-dir", help="where the models are built (default: a temp dir, removed after)")
    parser.add_argument("--out", help="also write the JSON document to this file")
    args = parser.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    names = [n.strip() for n in args.arrangements.split(",") if n.strip()]
    unknown = [s for s in sizes if s not in SIZES] + [n for n in names if n not in ARRANGEMENTS]
    if unknown:
        raise SystemExit(f"unknown {unknown}; sizes are {list(SIZES)}, arrangements {list(ARRANGEMENTS)}")
    case = replace(MEMORY_CASE, **{field: getattr(args, field) for field in asdict(MEMORY_CASE)})
    load_before = os.getloadavg()[0]  # peak RSS hardly moves with load; recorded anyway
    with tempfile.TemporaryDirectory() as temp:
        results = measure({s: SIZES[s] for s in sizes}, names, case, args.cache_dir or temp, args.repeat,
                          args.mmap_threshold)
    text = json.dumps(document(results, {s: SIZES[s] for s in sizes}, case, load_before, args.repeat,
                               args.mmap_threshold), indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
