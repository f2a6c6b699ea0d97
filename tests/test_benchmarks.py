"""The throughput benchmark runs (one short case per objective family), so its figures stay reproducible."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "preference_throughput.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("preference_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model_dir(bench, tmp_path_factory):
    return bench.ensure_model("issue9", str(tmp_path_factory.mktemp("bench")))


@pytest.mark.parametrize("objective,reference,repeat", [("dpo", "precomputed", 2), ("mdpo", "frozen", 1),
                                                         ("sft", "none", 1)])
def test_benchmark_case_trains_and_reports(bench, model_dir, tmp_path, objective, reference, repeat):
    case = bench.Case(objective=objective, reference=reference, batch_size=2, steps=2, warmup=1,
                      response_repeat=repeat)
    result = bench.run_case(case, model_dir, str(tmp_path))
    assert result["pairs_per_s"] > 0 and result["peak_rss_mib"] > 0 and result["response_tokens_per_s"] > 0
    # Policy = reference at the first step: every preference term (DPO, conditional, anchor) is ln 2.
    expected_first = {"dpo": math.log(2), "mdpo": 3 * math.log(2)}.get(objective)
    if expected_first is not None:
        assert result["first_loss"] == pytest.approx(expected_first, abs=1e-4)


def test_ratios_pair_each_case_with_its_baselines(bench):
    rows = [
        {"framework": "vlmalign", "objective": "sft", "reference": "none", "batch_size": 8, "response_repeat": 1,
         "lora": False, "share_prefix": True, "encode_once": False, "median_step_s": 0.1, "peak_rss_mib": 500,
         "rss_growth_mib": 100, "pairs_per_s": 80},
        {"framework": "vlmalign", "objective": "dpo", "reference": "precomputed", "batch_size": 8,
         "response_repeat": 1, "share_prefix": True, "encode_once": False, "median_step_s": 0.2, "peak_rss_mib": 550,
         "rss_growth_mib": 150, "pairs_per_s": 40},
        {"framework": "vlmalign", "objective": "mdpo", "reference": "precomputed", "batch_size": 8,
         "response_repeat": 1, "share_prefix": True, "encode_once": False, "median_step_s": 0.26, "peak_rss_mib": 560,
         "rss_growth_mib": 160, "pairs_per_s": 31},
        {"framework": "trl", "objective": "dpo", "reference": "precomputed", "batch_size": 8, "pairs_per_s": 20},
    ]
    bench.add_ratios(rows)
    assert rows[1]["peak_rss_vs_sft"] == pytest.approx(1.1) and rows[1]["rss_growth_vs_sft"] == pytest.approx(1.5)
    assert rows[2]["step_time_vs_dpo"] == pytest.approx(1.3)
    assert rows[3]["vlmalign_precomputed_speedup"] == pytest.approx(2.0)


def test_trl_peer_gets_the_same_pairs_as_vlmalign(bench, model_dir):
    """The comparison is only fair if TRL trains on exactly the pairs vlmalign's benchmark case does."""
    from benchmarks.peers.trl_dpo import shapes_pairs
    from vlmalign.data.datamodule import ShapesDataModule
    from vlmalign.models import load_backbone

    processor = load_backbone(model_dir).processor
    ours = ShapesDataModule(processor, views=("chosen", "rejected"), task="preference", num_train_scenes=6,
                            num_val_scenes=1, error_mix=bench.SHAPES_ERROR_MIX).train_set
    for index, theirs in enumerate(shapes_pairs(6)):
        _, pair = ours.pair_for(index)
        assert theirs["prompt"][0]["content"][1]["text"] == pair.prompt
        assert theirs["chosen"][0]["content"][0]["text"] == pair.chosen
        assert theirs["rejected"][0]["content"][0]["text"] == pair.rejected


def test_lora_reference_without_lora_is_refused_before_any_work(bench):
    with pytest.raises(SystemExit, match="--reference lora .* needs --lora"):
        bench.Case(objective="dpo", reference="lora")


def test_step_breakdown_times_every_phase_of_a_step(bench, tmp_path):
    """benchmarks/step_breakdown.py (imports preference_throughput as ``bench``, registered by the fixture)."""
    spec = importlib.util.spec_from_file_location("step_breakdown", SCRIPT.parent / "step_breakdown.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ms = module.breakdown("mdpo", steps=2, warmup=0, batch_size=2, cache_dir=str(tmp_path))
    assert set(ms) == {*module.PHASES, "total"}
    assert all(ms[phase] > 0 for phase in module.PHASES)
    assert sum(ms[phase] for phase in module.PHASES) <= ms["total"] * 1.05  # medians of parts vs median of sums
