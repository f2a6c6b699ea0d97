"""``vlmalign-ship-base base=NAME``: train the base ``conf/base/NAME.yaml`` from nothing and ship it with the package.

    OMP_NUM_THREADS=1 vlmalign-ship-base base=sft_shapes        # +ship_to=DIR writes elsewhere (tests)

It always trains (never copies an earlier shipped copy), in a fresh temporary cache, and writes
``vlmalign/assets/bases/NAME-<fingerprint>/`` with its provenance (``shipped.json``) and a manifest, removing older
shipped versions of NAME. Commit the result; vlmalign/pipelines/shipped_bases.py says why bases are shipped.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from vlmalign.errors import ConfigError
from vlmalign.pipelines.base_model import base_fingerprint, compose_base_config, ensure_base_model
from vlmalign.pipelines.shipped_bases import RUN_FILES, SHIPPED_DIR, copy_files, shipped_versions
from vlmalign.utils.cli import cli_task
from vlmalign.utils.compose import CONFIG_DIR
from vlmalign.utils.files import atomic_directory, write_manifest, write_text_atomic


def _commit() -> str:
    """The checkout's commit, with "-dirty" when uncommitted changes took part (they are then in the next commit)."""
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", *args], capture_output=True, text=True, check=True,
                                  cwd=Path(__file__).parent).stdout.strip()

        return git("rev-parse", "HEAD") + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def ship(base: DictConfig, cache_dir: str, root: Path = SHIPPED_DIR) -> Path:
    """Train ``base`` (a ``conf/base/`` entry) in ``cache_dir`` and copy it into ``root``; returns the shipped
    directory."""
    fingerprint = base_fingerprint(compose_base_config(base, cache_dir))
    built = ensure_base_model(base, cache_dir, use_shipped=False)
    provenance = {
        "base": base.name, "fingerprint": fingerprint, "overrides": list(base.overrides),
        "command": f"vlmalign-ship-base base={base.name}", "commit": _commit(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
    }
    target = root / f"{base.name}-{fingerprint}"
    stale = [p for p in shipped_versions(base.name, root) if p != target]
    with atomic_directory(target) as scratch:
        copy_files(built, scratch, RUN_FILES)
        write_text_atomic(scratch / "shipped.json", json.dumps(provenance, indent=2) + "\n")
        write_manifest(scratch)
    for old in stale:
        shutil.rmtree(old)
    return target


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@cli_task("vlmalign-ship-base")
def main(cfg: DictConfig) -> None:
    if not cfg.get("base"):
        raise ConfigError("vlmalign-ship-base needs a base to ship: base=<a file of conf/base/, e.g. sft_shapes>")
    root = Path(cfg.get("ship_to") or SHIPPED_DIR)
    with tempfile.TemporaryDirectory(prefix="vlmalign-ship-") as fresh:  # trained from nothing, never reused
        print(ship(cfg.base, fresh, root))


if __name__ == "__main__":
    main()
