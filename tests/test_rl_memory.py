"""benchmarks/rl_memory.py: online RL's arrangements compose, pass the run-config check and train in fresh processes,
and holding four models (policy, frozen reference, critic, reward model) grows peak RSS more than holding one."""

import json

from benchmarks import rl_memory
from benchmarks.rl_throughput import Case

# One step of 2 prompts x 2 samples, 8 new tokens, at the smallest size (0.8 M parameters), under the fixed mmap
# threshold the benchmark measures with (peaks repeat to ~1 MiB).
CASE = Case(prompts_per_step=2, group_size=2, max_new_tokens=8, steps=1, warmup=0, threads=1)
FIELDS = {"size", "arrangement", "models", "resident", "params", "weights_mib", "peak_rss_mib", "baseline_rss_mib",
          "rss_growth_mib", "rss_growth_vs_leanest", "extra_over_leanest_mib", "extra_in_weight_copies", "leanest",
          "median_step_s", "case_wall_s"}


def test_four_resident_models_grow_more_than_one(tmp_path):
    sizes = {"S": rl_memory.SIZES["S"]}
    results = rl_memory.measure(sizes, ["grpo_no_reference", "ppo_separate_reward_model"], CASE, str(tmp_path))
    one, four = results
    assert FIELDS <= set(one) and FIELDS <= set(four)
    assert (one["models"], four["models"]) == (1, 4) and one["params"] == four["params"] == 773_248
    assert one["steps_timed"] == four["steps_timed"] == 1
    # Beyond the one-model run, at least the three extra models' weight state: the reference's copy, the critic's
    # weights, gradients and two AdamW moments, the reward model's copy (6 copies; the critic's activations come on
    # top). Measured 2026-12-07: 54 and 101 MiB, 2.9 MiB a copy.
    assert four["rss_growth_mib"] > one["rss_growth_mib"] + 6 * one["weights_mib"]
    assert one["leanest"] == four["leanest"] == "grpo_no_reference" and one["rss_growth_vs_leanest"] == 1
    assert four["extra_in_weight_copies"] > 6
    document = json.loads(json.dumps(rl_memory.document(results, sizes, CASE, load_before=1.0)))
    assert {"date", "machine", "python", "results", "load_average_1min", "crossover_size"} <= set(document)
    assert document["malloc_mmap_threshold"] == rl_memory.EXACT_MMAP_THRESHOLD
    assert document["arrangements"]["ppo_separate_reward_model"]["models"] == 4


def test_crossover_is_the_first_size_where_the_extra_models_outweigh_the_policys_run():
    growth = {"S": (100, 110, 160, 170), "M": (700, 780, 1300, 1450)}  # along rl_memory.CHAIN: 1, 2, 3, 4 models
    results = [{"size": size, "arrangement": name, "rss_growth_mib": g}
               for size, values in growth.items() for name, g in zip(rl_memory.CHAIN, values)]
    assert rl_memory.crossover(results) == "M"  # S: +70 MiB over 100; M: +750 over 700
    assert rl_memory.crossover(results[:4]) is None
    assert rl_memory.crossover([r for r in results if r["arrangement"] == "grpo_no_reference"]) is None

