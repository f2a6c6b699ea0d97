"""The SFT base shipped with the package (vlmalign/pipelines/shipped_bases.py): pinned, intact, used, rebuildable."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file

from vlmalign.pipelines.base_model import base_fingerprint, compose_base_config, ensure_base_model
from vlmalign.pipelines.shipped_bases import copy_shipped, shipped_base, shipped_versions
from vlmalign.utils.compose import CONFIG_DIR, compose_train
from vlmalign.utils.files import manifest_problem


def _default_base(cache_dir):
    base = compose_train([]).base  # what `make train` starts from
    return base, base_fingerprint(compose_base_config(base, str(cache_dir)))


SHIPPED_NAMES = sorted(path.stem for path in (Path(CONFIG_DIR) / "base").glob("*.yaml")
                       if OmegaConf.load(path).get("shipped"))


def test_the_default_base_and_its_first_stage_are_the_shipped_ones():
    assert compose_train([]).base.name in SHIPPED_NAMES and "sft_shapes_stage1" in SHIPPED_NAMES


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_every_shipped_base_is_shipped_under_todays_fingerprint_and_intact(tmp_path, name):
    base = compose_train([f"base={name}"]).base
    fingerprint = base_fingerprint(compose_base_config(base, str(tmp_path)))
    shipped = shipped_base(name, fingerprint)
    assert shipped is not None, (
        f"no shipped {name} base has fingerprint {fingerprint} (shipped: {shipped_versions(name)}): the recipe or "
        f"BASE_VERSION changed; run `vlmalign-ship-base base={name}`, record its numbers in docs/foundation.md and "
        "commit it")
    assert shipped_versions(name) == [shipped]  # no stale copy left beside it
    assert manifest_problem(shipped) is None
    provenance = json.loads((shipped / "shipped.json").read_text())
    assert provenance["fingerprint"] == fingerprint and provenance["overrides"] == list(base.overrides)
    size = sum(f.stat().st_size for f in shipped.rglob("*") if f.is_file())
    assert size <= 10 * 2**20, f"{shipped} is {size / 2**20:.1f} MiB; the repository takes at most 20 MiB of bases"


def test_a_run_starts_from_the_shipped_weights_tensor_by_tensor_without_training(tmp_path):
    base, fingerprint = _default_base(tmp_path)
    directory = ensure_base_model(base, str(tmp_path))
    assert directory.name == f"{base.name}-{fingerprint}-shipped"
    assert not (tmp_path / "models").exists()  # no tiny model was built, so nothing was trained
    shipped = load_file(shipped_base(base.name, fingerprint) / "model" / "model.safetensors")
    used = load_file(directory / "model" / "model.safetensors")
    assert shipped.keys() == used.keys() and all(torch.equal(shipped[k], used[k]) for k in shipped)


def test_a_damaged_shipped_base_is_refused_with_the_way_to_restore_it(tmp_path):
    base, fingerprint = _default_base(tmp_path)
    damaged = tmp_path / "damaged"
    shutil.copytree(shipped_base(base.name, fingerprint), damaged)
    with open(damaged / "model" / "model.safetensors", "r+b") as handle:
        handle.seek(-4, 2)
        handle.write(b"\0\0\0\0")
    (tmp_path / "scratch").mkdir()
    with pytest.raises(RuntimeError, match="is damaged .*git checkout"):
        copy_shipped(damaged, tmp_path / "scratch")


def _ship(base_name: str, tmp_path, threads: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    return subprocess.run([sys.executable, "-m", "vlmalign.pipelines.ship_base", f"base={base_name}",
                           f"+ship_to={tmp_path / 'shipped'}", f"hydra.run.dir={tmp_path / 'run'}"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=3600, env=env)


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_rebuilding_a_shipped_base_from_nothing_scores_within_noise_of_it(tmp_path, name):
    """Minutes (stage 1: ~15 on 2 cores): ships the base again into a temporary folder, with the thread count its
    provenance records (the scores depend on it, docs/foundation.md), and compares the two metrics.json."""
    base = compose_train([f"base={name}"]).base
    original = shipped_base(name, base_fingerprint(compose_base_config(base, str(tmp_path))))
    threads = json.loads((original / "shipped.json").read_text())["threads"]
    done = _ship(name, tmp_path, threads)
    assert done.returncode == 0, done.stderr[-2000:]
    [rebuilt] = shipped_versions(name, tmp_path / "shipped")
    shipped, again = (json.loads((d / "metrics.json").read_text()) for d in (original, rebuilt))
    for metric, noise in (("test/chair_i", 0.02), ("test/cover", 0.03), ("test/pope/random/accuracy", 0.05),
                          ("test/pope/adversarial/accuracy", 0.05)):
        assert abs(again[metric] - shipped[metric]) <= noise, (metric, again[metric], shipped[metric])


@pytest.mark.slow
def test_ship_base_trains_from_nothing_and_writes_a_pinned_intact_copy(tmp_path):
    """~1.5 minutes: the tiny model and the 60-step quick base are built in a fresh cache, as shipping always does."""
    done = _ship("sft_quick", tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    [shipped] = shipped_versions("sft_quick", tmp_path / "shipped")
    base = compose_train(["base=sft_quick"]).base
    assert shipped.name == f"sft_quick-{base_fingerprint(compose_base_config(base, str(tmp_path)))}"
    assert manifest_problem(shipped) is None and (shipped / "model" / "model.safetensors").is_file()
    assert json.loads((shipped / "shipped.json").read_text())["command"] == "vlmalign-ship-base base=sft_quick"


def test_ship_base_without_a_base_is_one_clear_line_before_anything_is_built(tmp_path):
    done = subprocess.run([sys.executable, "-m", "vlmalign.pipelines.ship_base", "~base",
                           f"+ship_to={tmp_path / 'shipped'}", f"hydra.run.dir={tmp_path / 'run'}"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 2
    assert "vlmalign-ship-base needs a base to ship: base=<a file of conf/base/" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "shipped").exists()
