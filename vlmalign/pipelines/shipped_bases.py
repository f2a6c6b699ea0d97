"""SFT bases shipped inside the package: trained once, by a documented command, and pinned by fingerprint.

Why ship weights at all: the shapes-world base's yes/no answer is learned after a plateau whose length depends on
the order in which CPU kernels sum (thread count, machine; docs/foundation.md), so two machines running the same
config can build bases that differ in POPE by 0.3. A study needs the *same* base everywhere; a shipped one is.

A shipped base lives in ``vlmalign/assets/bases/<name>-<fingerprint>/``: the run's ``model/`` (safetensors, loaded
through the same HF path as any checkpoint), ``metrics.json``, ``samples.jsonl``, ``shipped.json`` (the command,
commit, machine, threads and date that produced it) and a ``MANIFEST.sha256``. The fingerprint is the one the base
cache uses (composed config + ``BASE_VERSION``): change the recipe and the fingerprint moves, the shipped copy is
no longer used, and tests/test_shipped_base.py fails until a new one is shipped (``vlmalign-ship-base``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from vlmalign.utils.files import manifest_problem

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "assets" / "bases"
RUN_FILES = ("model", "metrics.json", "samples.jsonl")  # what a base run wrote that its users read
SHIPPED_FILES = (*RUN_FILES, "shipped.json")


def shipped_base(name: str, fingerprint: str, root: Path = SHIPPED_DIR) -> Path | None:
    """The shipped base directory for this (name, fingerprint), or None when none is shipped."""
    directory = root / f"{name}-{fingerprint}"
    return directory if directory.is_dir() else None


def shipped_versions(name: str, root: Path = SHIPPED_DIR) -> list[Path]:
    """Every shipped directory of base ``name`` (normally one; more means a stale one was left behind)."""
    return sorted(p for p in root.glob(f"{name}-*") if p.is_dir()) if root.is_dir() else []


def copy_shipped(source: Path, scratch: Path) -> None:
    """Copy a shipped base into a cache scratch directory, refusing one whose files fail their manifest."""
    problem = manifest_problem(source)
    if problem:
        raise RuntimeError(f"the shipped base {source} is damaged ({problem}); restore it with "
                           f"`git checkout -- {source}` or rebuild it with `vlmalign-ship-base`")
    copy_files(source, scratch, SHIPPED_FILES)


def copy_files(source: Path, target: Path, names: tuple[str, ...]) -> None:
    """Copy the files and folders ``names`` of ``source`` that exist into ``target`` (shipping and unshipping)."""
    for name in names:
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name)
        elif (source / name).exists():
            shutil.copy2(source / name, target / name)
