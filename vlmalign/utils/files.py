"""Atomic writes and cross-process locks: a crash mid-write never leaves a file a later run trusts."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from filelock import FileLock

log = logging.getLogger(__name__)

DIGEST_SUFFIX = ".sha256"
MANIFEST = "MANIFEST.sha256"


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


def write_file_atomic(path: str | Path, write: Callable[[BinaryIO], Any], checksum: bool = False) -> None:
    """Call ``write(handle)`` on a temporary file in the same directory, fsync, then rename over ``path``.

    With ``checksum``, the file's SHA-256 is recorded beside it (``<path>.sha256``) *before* the rename,
    so the file never exists without its digest: a process killed between the two leaves the old file
    with the new digest (refused as corrupt), never a file that nothing vouches for.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if checksum:
            write_text_atomic(str(path) + DIGEST_SUFFIX, file_digest(tmp) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str, checksum: bool = False) -> None:
    write_file_atomic(path, lambda handle: handle.write(text.encode("utf-8")), checksum)


def write_json_atomic(path: str | Path, payload: Any, checksum: bool = False) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n", checksum)


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
        if target.is_dir():  # a directory cannot be renamed over a non-empty one: move the old aside first
            old = target.with_name(f".{target.name}.{os.getpid()}.old.tmp")
            os.replace(target, old)
            os.replace(scratch, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
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


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file, streamed (checkpoints can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_digest(path: str | Path) -> None:
    """Record ``path``'s SHA-256 next to it (``<path>.sha256``), atomically."""
    write_text_atomic(str(path) + DIGEST_SUFFIX, file_digest(path) + "\n")


def digest_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be trusted against its recorded digest, or None when it matches.

    A file without a digest (written by another tool) is reported as such; callers decide whether
    that is acceptable (a user-supplied checkpoint) or not (our own caches).
    """
    path = Path(path)
    recorded = Path(str(path) + DIGEST_SUFFIX)
    if not path.exists():
        return f"{path} does not exist"
    if not recorded.exists():
        return f"{path} has no recorded checksum ({recorded.name})"
    expected = recorded.read_text().strip()
    actual = file_digest(path)
    if actual != expected:
        return f"{path} is corrupt or truncated: its SHA-256 {actual[:12]}... is not the recorded {expected[:12]}..."
    return None


def write_manifest(directory: str | Path) -> None:
    """Record the SHA-256 of every file under ``directory`` in ``MANIFEST.sha256`` (written last)."""
    directory = Path(directory)
    lines = [f"{file_digest(f)}  {f.relative_to(directory).as_posix()}"
             for f in sorted(directory.rglob("*")) if f.is_file() and f.name != MANIFEST]
    write_text_atomic(directory / MANIFEST, "\n".join(lines) + "\n")


def manifest_problem(directory: str | Path) -> str | None:
    """Why the files under ``directory`` do not match its manifest, or None when they all do."""
    directory = Path(directory)
    manifest = directory / MANIFEST
    if not manifest.exists():
        return f"{directory} has no {MANIFEST} (an unfinished or foreign build)"
    for line in manifest.read_text().splitlines():
        expected, name = line.split("  ", 1)
        target = directory / name
        if not target.is_file():
            return f"{target} is missing"
        if file_digest(target) != expected:
            return f"{target} is corrupt or truncated (SHA-256 mismatch)"
    return None


def quarantine(path: str | Path) -> Path:
    """Move an untrustworthy file or directory aside (never delete what a user may want to inspect)."""
    path = Path(path)
    aside = path.with_name(f"{path.name}.corrupt-{os.getpid()}-{int(time.time())}")
    os.replace(path, aside)
    return aside


def build_once(target: str | Path, build: Callable[[Path], None], what: str = "cache") -> Path:
    """The one build-or-reuse path for cache directories shared by concurrent runs (tiny models, SFT bases).

    Under ``target``'s lock: a finished directory whose manifest verifies is reused; one that fails its
    manifest is moved aside (``*.corrupt-*``, kept for inspection) and rebuilt; scratch left by a killed
    build is cleared. ``build(scratch)`` writes into a scratch directory that is checksummed, then
    renamed into place, so no run ever sees a half-built cache. A directory from before manifests were
    written (renamed into place whole, hence complete) gets one on first reuse.
    """
    target = Path(target)
    with locked(target):
        if target.exists():
            if not (target / MANIFEST).exists():
                write_manifest(target)
            problem = manifest_problem(target)
            if problem is None:
                log.info("reusing %s %s", what, target)
                return target
            log.warning("%s %s fails its checksums (%s); moved to %s and rebuilding", what, target, problem,
                        quarantine(target))
        for stale in remove_stale_scratch(target):
            log.warning("removed %s, an unfinished build left by a killed run", stale)
        log.info("building %s %s (once; later runs reuse it)", what, target)
        with atomic_directory(target) as scratch:
            build(scratch)
            write_manifest(scratch)
    return target
