"""Bad input to the RLAIF-V pipeline: clear errors naming the key, file or line, and nothing lost."""

from __future__ import annotations

import json

import pytest

from tests.rlaifv.helpers import compose_pipeline
from vlmalign.data.shapes import generate_scenes
from vlmalign.errors import ConfigError, DataError
from vlmalign.models.generation import sample_responses
from vlmalign.pipelines.rlaifv.pipeline import RLAIFVPipeline
from vlmalign.pipelines.rlaifv.round_data import read_pairs
from vlmalign.utils.instantiate import build

PAIR = {"instruction_id": "i", "prompt": "describe the image .", "chosen": "a red circle .",
        "rejected": "a blue circle .", "scene": generate_scenes("train", 1)[0].to_dict()}


def test_a_pairs_file_with_a_bad_line_names_the_file_and_line(tmp_path):
    path = tmp_path / "pairs.jsonl"
    with pytest.raises(DataError, match="no such file"):
        read_pairs(path)
    path.write_text(json.dumps(PAIR) + "\n{not json\n")
    with pytest.raises(DataError, match=r"pairs.jsonl:2: not valid JSON"):
        read_pairs(path)
    path.write_text(json.dumps(PAIR) + "\n" + json.dumps({k: v for k, v in PAIR.items() if k != "chosen"}) + "\n")
    with pytest.raises(DataError, match=r"pairs.jsonl:2: missing field\(s\) \['chosen'\]"):
        read_pairs(path)
    path.write_text("")
    with pytest.raises(DataError, match="no pairs"):
        read_pairs(path)


def test_a_starting_policy_that_is_not_a_model_directory(tmp_path, policy):
    cfg = compose_pipeline(tmp_path / "run", tmp_path / "cache", policy, f"policy.init_from={tmp_path}")
    with pytest.raises(ConfigError, match="policy.init_from=.*not an HF model directory"):
        RLAIFVPipeline(cfg).run()


def test_a_round_without_pairs_says_what_to_raise_and_keeps_its_labels(tmp_path, policy):
    cfg = compose_pipeline(tmp_path / "run", tmp_path / "cache", policy,
                           "labeler._target_=tests.rlaifv.helpers.AcceptAllLabeler")
    with pytest.raises(ConfigError, match=r"no pair has a score gap >= 1 among 12 responses.*sampling.num_samples"):
        RLAIFVPipeline(cfg).run()
    for stage in ("samples", "claims", "labels", "pairs"):  # finished work stays for a resumed run
        assert (tmp_path / "run" / "round_1" / f"{stage}.jsonl").exists()


def test_bad_knobs_are_config_errors_naming_the_key(tmp_path, policy):
    cfg = compose_pipeline(tmp_path / "run", tmp_path / "cache", policy, "instructions.per_round=0")
    with pytest.raises(ConfigError, match=r"instructions.*per_round=0 must be >= 1"):
        build(cfg.instructions, "instructions")
    with pytest.raises(ValueError, match="temperature=0"):
        sample_responses(None, [], [], num_samples=2, temperature=0.0, max_new_tokens=4, seed=0)
