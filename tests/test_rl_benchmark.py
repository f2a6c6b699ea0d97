"""benchmarks/rl_throughput.py: vlmalign's GRPO side runs and reports, and TRL's peer is handed exactly the
prompts, in the order, and with the token ids vlmalign trains on (the comparison is only fair if it is)."""

import json

import pytest

from benchmarks import rl_throughput as bench
from benchmarks.peers import trl_grpo
from vlmalign.data.encoding import SequenceEncoder
from vlmalign.rl.rewards import scene_reward

# Two tiny steps: 2 prompts x 2 samples, 8 new tokens, one warm-up step and one timed.
CASE = bench.Case(prompts_per_step=2, group_size=2, max_new_tokens=8, steps=1, warmup=1, threads=1)
SIDE_FIELDS = {"median_step_s", "rollout_tokens_per_s", "median_rollout_s", "rollout_share_of_step",
               "generated_tokens_per_step", "peak_rss_mib", "baseline_rss_mib", "torch_threads", "steps_timed"}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("rl_bench_cache"))  # the shipped base is copied here, once


@pytest.fixture(scope="module")
def peer_args(cache_dir):
    """(the peer's parsed arguments, its GRPOSettings) as rl_throughput hands them over for CASE."""
    return trl_grpo.parse_args(bench.peer_arguments(CASE, cache_dir))


def test_vlmalign_side_trains_and_reports(cache_dir):
    result = bench.run_vlmalign(CASE, cache_dir)
    assert SIDE_FIELDS <= set(result)
    assert result["steps_timed"] == 1 and len(result["losses"]) == 2 and result["torch_threads"] == 1
    assert result["median_step_s"] > result["median_rollout_s"] > 0 and 0 < result["rollout_share_of_step"] < 1
    # 4 completions of 1..8 tokens each (EOS included)
    assert 4 <= result["generated_tokens_per_step"] <= 32 and result["rollout_tokens_per_s"] > 0


def _rows(peer_args, settings=None):
    args, case_settings = peer_args
    return trl_grpo.shapes_prompt_rows(json.loads(args.world_json), args.prompt, settings or case_settings)


@pytest.fixture(scope="module")
def vlmalign_prompts(cache_dir, peer_args):
    """The prompt records vlmalign's GRPO run of CASE trains on, in its loader's order, and the model's processor."""
    from vlmalign.models import load_backbone
    from vlmalign.utils.instantiate import build

    processor = load_backbone(peer_args[0].model_dir).processor
    datamodule = build(bench.compose(CASE, cache_dir, cache_dir).data, "data", processor=processor,
                       views=("rollout",))
    return [record for batch in datamodule.train_dataloader() for record in batch["prompts"].items], processor


def test_peer_gets_vlmalign_prompts_in_loader_order(peer_args, vlmalign_prompts):
    ours, _ = vlmalign_prompts
    rows, scenes = _rows(peer_args)
    assert [scenes[row["scene_index"]] for row in rows] == [record.scene for record in ours]
    assert [row["prompt"][0]["content"][1]["text"] for row in rows] == [record.prompt for record in ours]
    assert all(list(row["image"].getdata()) == list(record.image.getdata()) for row, record in zip(rows, ours))


def test_trl_prompt_ids_are_vlmalign_prompt_ids(peer_args, vlmalign_prompts):
    """What TRL's ``_tokenize_prompts`` makes of a row (grpo_trainer.py) equals vlmalign's encoding, BOS included."""
    pytest.importorskip("trl")
    from trl.data_utils import prepare_multimodal_messages

    ours, processor = vlmalign_prompts
    rows, _ = _rows(peer_args)
    conversations = [prepare_multimodal_messages(row["prompt"], images=[row["image"]]) for row in rows]
    theirs = processor.apply_chat_template(conversation=conversations, add_generation_prompt=True, tokenize=True,
                                           return_dict=True)["input_ids"]
    encoder = SequenceEncoder(processor, max_length=10**6)
    assert theirs == [encoder.encode_prompt_inputs(record.image, record.prompt)[0] for record in ours]


def test_peer_reward_is_vlmalign_scene_reward(peer_args):
    rows, scenes = _rows(peer_args, trl_grpo.GRPOSettings(prompts_per_step=2, steps=1, warmup=0))
    scene = scenes[rows[0]["scene_index"]]
    said = " and ".join(f"a {o.color} {o.shape}" for o in scene.objects)
    texts = [f" {said} . ", f"{said} and a purple star", "a"]
    completions = [[{"role": "assistant", "content": text}] for text in texts]
    reward = trl_grpo.scene_reward_function(scenes)(completions=completions, scene_index=[rows[0]["scene_index"]] * 3)
    assert reward == [scene_reward(scene, text.strip()) for text in texts]
    assert reward[0] == len(scene.objects)


def test_trl_side_trains_and_reports(peer_args, tmp_path):
    pytest.importorskip("trl")
    args, settings = peer_args
    assert settings.beta == 0.04 and settings.group_size == CASE.group_size  # from conf/objective/grpo.yaml, CASE
    rows, scenes = _rows(peer_args)
    result = trl_grpo.run_trl_grpo(args.model_dir, rows, scenes, settings, str(tmp_path))
    assert SIDE_FIELDS <= set(result) and result["trl_version"] == "1.16.0"
    assert 4 <= result["generated_tokens_per_step"] <= 32 and len(result["rewards"]) == 2


def test_ratios_divide_vlmalign_by_trl():
    ours = {"rollout_tokens_per_s": 300.0, "median_step_s": 0.5, "median_rollout_s": 0.2, "peak_rss_mib": 600.0,
            "baseline_rss_mib": 450.0}
    theirs = {"rollout_tokens_per_s": 200.0, "median_step_s": 1.0, "median_rollout_s": 0.4, "peak_rss_mib": 800.0,
              "baseline_rss_mib": 550.0}
    slow = {**ours, "median_step_s": 0.9}
    fast = {**ours, "median_step_s": 0.1}
    median = bench.median_run([slow, ours, fast])
    assert median["median_step_s"] == 0.5 and median["median_step_s_repeats"] == [0.9, 0.5, 0.1]
    assert bench.ratios(median, bench.median_run([theirs] * 3)) == {
        "rollout_tokens_per_s": 1.5, "median_step_s": 0.5, "median_rollout_s": 0.5, "peak_rss_mib": 0.75,
        "rss_growth_mib": 0.6, "median_step_s_per_round": [0.9, 0.5, 0.1]}
