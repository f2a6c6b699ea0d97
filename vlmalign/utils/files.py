"""Atomic writes and cross-process locks: a crash mid-write never leaves a file a later run trusts."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock


def fingerprint(payload: Any, length: int = 16) -> str:
    """Stable short hash of a JSON-serialisable description (cache keys)."""
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


@contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Hold an inter-process lock named after ``path`` (sweep members sharing a cache)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        yield


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, payload: Any) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


@contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """Yield a scratch directory that becomes ``target`` only if the block finishes.

    A process killed outright (SIGKILL, power loss) leaves its scratch behind; callers holding the
    target's lock clear those with ``remove_stale_scratch``.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        yield scratch
        os.replace(scratch, target)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)


def remove_stale_scratch(target: str | Path) -> list[Path]:
    """Delete scratch directories of ``atomic_directory(target)`` left by killed processes.

    Only safe while holding ``locked(target)``: then no live process can be writing one.
    """
    target = Path(target)
    stale = sorted(target.parent.glob(f".{target.name}.*.tmp"))
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale
