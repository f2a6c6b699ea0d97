"""The claims studies' scripts, dry: each run.sh is run with the vlmalign commands replaced by a recorder, every
member it would launch composes and passes the run checks, and every arm of experiments/claims/claims.yaml
picks members the scripts really launch (an arm that matches nothing would leave a 30-minute study's row empty)."""

from __future__ import annotations

import itertools
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from tests.hydra_utils import compose_app, compose_train
from vlmalign.models.reward_model import META_FILE
from vlmalign.report.claims import FOLDER, load_spec
from vlmalign.report.table import parse_override
from vlmalign.utils.instantiate import build
from vlmalign.validation import validate_run_config

ROOT = Path(__file__).resolve().parent.parent
RECORDER = """#!{python}
import json, os, sys
with open(os.environ["CALLS"], "a") as calls:
    calls.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
"""
COMMANDS = ("vlmalign-train", "vlmalign-rlaifv", "vlmalign-synth2-generator")


def expand(argv: list[str], claims_out: Path) -> list[dict]:
    """The members one recorded command launches: {command, path (of its sweep under the claims folder), overrides
    (one value each)}."""
    command, args = argv[0], [a for a in argv[1:] if a != "-m"]
    run_dir = next((a.split("=", 1)[1] for a in args if a.startswith(("hydra.sweep.dir=", "hydra.run.dir="))), None)
    parts = Path(run_dir).relative_to(claims_out).parts if run_dir else ("?",)
    # Hydra's own override parser says what a sweep value is (as runs.expected_members counts members)
    parsed = OverridesParser.create().parse_overrides([a for a in args if not a.startswith("hydra")])
    keys = [o.get_key_element() for o in parsed]
    choices = [list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
               for o in parsed]
    members = []
    for values in itertools.product(*choices):
        members.append({"command": command, "path": parts, "overrides": [f"{k}={v}" for k, v in zip(keys, values)]})
    return members


@pytest.fixture(scope="module")
def launched(tmp_path_factory) -> list[dict]:
    root = tmp_path_factory.mktemp("dry")
    bin_dir, claims_out, calls = root / "bin", root / "claims", root / "calls.jsonl"
    bin_dir.mkdir()
    for name in COMMANDS:
        path = bin_dir / name
        path.write_text(RECORDER.format(python=sys.executable))
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls), "CLAIMS_OUT": str(claims_out)}
    for noise in ("0.0", "0.2", "0.4"):  # what the contrastive-rewards reward_models part leaves for the RL parts
        model = claims_out / "contrastive_rewards" / "reward_models" / f"noise_{noise}" / "model"
        model.mkdir(parents=True)
        (model / META_FILE).write_text("{}")
    _, studies, _, _ = load_spec(ROOT / "experiments" / "claims" / "claims.yaml")
    for study in studies.values():
        done = subprocess.run(["bash", "-c", study.command], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0 and "failed" not in done.stdout, (study.command, done.stdout, done.stderr)
    return [m for line in calls.read_text().splitlines() for m in expand(json.loads(line), claims_out)]


def test_every_arm_picks_members_its_study_launches(launched):
    _, studies, _, _ = load_spec(ROOT / "experiments" / "claims" / "claims.yaml")
    for study in studies.values():
        folder = Path(study.folder or study.name).parts
        members = [{**m, "folder": m["path"][len(folder)] if len(m["path"]) > len(folder) else ""}
                   for m in launched if m["path"][:len(folder)] == folder]
        assert members, f"{study.command} launches nothing under {'/'.join(folder)}/"
        for arm, picks in study.arms.items():
            matching = [m for m in members
                        if picks.get(FOLDER, m["folder"]) == m["folder"]
                        and all(dict(parse_override(o) for o in m["overrides"]).get(k) == v
                                for k, v in picks.items() if k != FOLDER)]
            seeds = {dict(parse_override(o) for o in m["overrides"]).get("seed") for m in matching}
            assert len(seeds) == study.seeds, (study.name, arm, picks, len(matching))  # three seeds per arm


def test_every_training_member_composes_and_passes_the_run_checks(launched, tmp_path):
    distinct = {tuple(o for o in m["overrides"] if not o.startswith("seed=")): m for m in launched
                if m["command"] == "vlmalign-train"}
    assert len(distinct) >= 20
    for overrides in distinct:
        cfg = compose_train(list(overrides), tmp_path)
        validate_run_config(cfg, build(cfg.objective, "objective"))
        assert cfg.base.name == "sft_shapes"  # the shipped base (Synth²: its vision tower)


def test_every_rlaifv_pipeline_composes(launched, tmp_path):
    pipelines = [m for m in launched if m["command"] == "vlmalign-rlaifv"]
    assert {m["path"][1] for m in pipelines} == {"dnc", "self_reward", "one_round"} and len(pipelines) == 9
    for member in pipelines:
        cfg = compose_app("rlaifv", member["overrides"], tmp_path)
        rounds, per_round = cfg.rounds, cfg.instructions.per_round
        assert rounds * per_round == 1200  # equal instructions whatever the number of rounds


def test_a_contrastive_rewards_part_without_its_reward_model_or_an_unknown_part_is_refused(tmp_path):
    # the noise parts need the reward_models part's model/ folders; said before anything is launched
    env = {**os.environ, "CLAIMS_OUT": str(tmp_path)}
    script = ["bash", "experiments/contrastive_rewards/run.sh"]
    done = subprocess.run([*script, "noise_20"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "no reward model at" in done.stderr and "reward_models/noise_0.2/model" in done.stderr
    assert "run.sh reward_models' first" in done.stderr
    done = subprocess.run([*script, "noise_30"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "unknown part 'noise_30'" in done.stderr
