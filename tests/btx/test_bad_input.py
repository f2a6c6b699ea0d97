"""Bad input to vlmalign-btx-merge is a clear error before anything is written (docs/design.md, rule 9)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.btx.conftest import save
from tests.conftest import WORDS
from tests.hydra_utils import compose_app
from vlmalign.errors import ConfigError
from vlmalign.pipelines.btx.cli import merge_from_config
from vlmalign.pipelines.btx.merge import btx_merge

ROOT = Path(__file__).resolve().parents[2]


def tiny(seed: int = 0, text_layers: int = 2):
    from vlmalign.models.tiny_llava import TinyLlavaSpec, build_tiny_llava
    from vlmalign.models.tokenizer import train_word_tokenizer

    tokenizer = train_word_tokenizer([" ".join(WORDS)], extra_words=[*WORDS, "user", "assistant", ":"])
    spec = TinyLlavaSpec(image_size=32, patch_size=8, vision_hidden=32, vision_layers=1, vision_heads=2,
                         text_hidden=32, text_layers=text_layers, text_heads=2, max_positions=128)
    return build_tiny_llava(spec, tokenizer, seed=seed)


def refused(tmp_path, match: str, **kwargs):
    output = tmp_path / "merged"
    with pytest.raises(ConfigError, match=match):
        btx_merge(output=output, **kwargs)
    assert not output.exists() and not list(tmp_path.glob(".merged.*"))  # nothing written, no scratch left


def test_an_expert_branched_from_another_seed(seed_dir, expert_dirs, tmp_path):
    stranger = save(*tiny(seed=1), tmp_path / "other_seed")
    refused(tmp_path, "not branched from this seed", seed_model=seed_dir, experts=[*expert_dirs[:2], stranger])


def test_an_expert_of_another_architecture(seed_dir, expert_dirs, tmp_path):
    deeper = save(*tiny(text_layers=3), tmp_path / "deeper")
    refused(tmp_path, r"not of the seed's architecture.*num_hidden_layers: 2 vs 3",
            seed_model=seed_dir, experts=[expert_dirs[0], deeper])


def test_a_missing_expert_checkpoint(seed_dir, expert_dirs, tmp_path):
    refused(tmp_path, "no config.json", seed_model=seed_dir, experts=[expert_dirs[0], str(tmp_path / "never_run")])


def test_top_k_above_the_number_of_experts(seed_dir, expert_dirs, tmp_path):
    refused(tmp_path, "top_k=4 must be between 1 and the number of experts \\(3\\)", seed_model=seed_dir,
            experts=expert_dirs, top_k=4)
    refused(tmp_path, "top_k=3 must be between 1 and the number of experts \\(2\\)", seed_model=seed_dir,
            method="upcycle", num_experts=2, top_k=3)


def test_a_family_with_no_moe_counterpart(tmp_path):
    from tests.model_presets.tiny_models import build_paligemma

    gemma = save(*build_paligemma(), tmp_path / "paligemma")
    refused(tmp_path, "model family 'paligemma' .* has no MoE counterpart", seed_model=gemma, experts=[gemma, gemma])


def test_method_settings(seed_dir, expert_dirs, tmp_path):
    refused(tmp_path, "method='moe' is not one of", seed_model=seed_dir, experts=expert_dirs, method="moe")
    refused(tmp_path, "upcycle builds the MoE from num_experts copies", seed_model=seed_dir, method="upcycle")
    refused(tmp_path, "needs experts", seed_model=seed_dir)
    refused(tmp_path, "seed_model is not set", seed_model=None, experts=expert_dirs)
    refused(tmp_path, "expert_weights=\\[1.0, 2.0\\] must be 3", seed_model=seed_dir, experts=expert_dirs,
            expert_weights=[1.0, 2.0])
    refused(tmp_path, "router.init=activations needs one domain per expert", seed_model=seed_dir,
            experts=expert_dirs, router_init="activations", domains=["counting"], domain_batches=lambda p, d: [])


def test_an_existing_output_is_not_overwritten(seed_dir, expert_dirs, tmp_path):
    output = tmp_path / "merged"
    output.mkdir()
    (output / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="exists and is not empty"):
        btx_merge(seed_dir, output, experts=expert_dirs)
    assert [p.name for p in output.iterdir()] == ["keep.txt"]


def test_the_merge_config_composes_and_merges(seed_dir, expert_dirs, tmp_path):
    cfg = compose_app("btx_merge", [f"seed_model={seed_dir}", f"experts=[{','.join(expert_dirs)}]",
                                    "router.init=activations", "router.domains=[counting,spatial,null]",
                                    "world.image_size=32", "router.num_scenes=2", "router.max_length=80"],
                      tmp_path)
    out = merge_from_config(cfg)
    assert out == tmp_path / "model" and (out / "config.json").is_file()
    assert json.loads((out / "btx_merge.json").read_text())["domains"] == ["counting", "spatial", None]


def test_the_console_script_reports_a_mistake_in_one_line(seed_dir, expert_dirs, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    failed = subprocess.run([sys.executable, "-m", "vlmalign.pipelines.btx.cli", f"seed_model={seed_dir}",
                             f"experts=[{expert_dirs[0]}]", "top_k=3", f"output={tmp_path / 'bad'}",
                             f"hydra.run.dir={tmp_path / 'run'}"],
                            capture_output=True, text=True, env=env, cwd=tmp_path)
    assert failed.returncode == 2 and "vlmalign-btx-merge: error: top_k=3" in failed.stderr
    assert "Traceback" not in failed.stderr and not (tmp_path / "bad").exists()
