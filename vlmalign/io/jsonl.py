"""JSON-lines files read with line numbers in every error, and an output file a crashed run can resume.

The output is appended one flushed line per sample, so a crash loses at most the line being written;
that truncated last line is detected and cut on the next run. Anything else that does not parse is
reported (file:line) and the file is left untouched, so a resumed run never destroys finished work.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from vlmalign.errors import DataError


def iter_jsonl(path: str | Path, skip_truncated_tail: bool = False) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) of each non-blank line; a line that is not UTF-8 JSON is a DataError
    naming file:line. ``skip_truncated_tail`` passes over an unterminated last line that does not parse
    (what a crash mid-write leaves; ``repair_truncated_tail`` cuts it)."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from error
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                yield number, json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                if skip_truncated_tail and not raw.endswith(b"\n"):
                    return
                what = error.msg if isinstance(error, json.JSONDecodeError) else "not UTF-8 text"
                raise DataError(f"{path}:{number}: not valid JSON ({what})") from error


def repair_truncated_tail(path: str | Path) -> str | None:
    """Cut a last line that a crash left half-written; return what was cut (None if nothing was).

    Only an unterminated last line that is not a complete JSON object is cut: our writer ends every
    line with a newline in the same write, so such a line cannot be a finished record.
    """
    path = Path(path)
    if not path.exists():
        return None
    with path.open("rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return None
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return None
        start = _start_of_last_line(handle, size)
        handle.seek(start)
        tail = handle.read()
        if _is_record(tail):  # complete but for the newline (the crash fell between the two): keep it
            handle.write(b"\n")
            return None
        handle.truncate(start)
    return tail.decode("utf-8", errors="replace")


def _start_of_last_line(handle: IO[bytes], end: int) -> int:
    """Offset just after the last newline before ``end`` (0 if none); reads backwards, so only the tail."""
    position = end
    while position > 0:
        step = min(65536, position)
        handle.seek(position - step)
        newline = handle.read(step).rfind(b"\n")
        if newline >= 0:
            return position - step + newline + 1
        position -= step
    return 0


def _is_record(blob: bytes) -> bool:
    try:
        return isinstance(json.loads(blob), dict)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False


def finished_ids(path: str | Path) -> set[str]:
    """Ids of the records already in an output file (empty when it does not exist).

    Every complete line must be a record with an id, or this is a DataError and nothing is changed:
    it is checked before ``repair_truncated_tail`` may cut anything, so a wrong --output (some other
    file) is reported, never edited.
    """
    path = Path(path)
    if not path.exists():
        return set()
    ids = set()
    for number, row in iter_jsonl(path, skip_truncated_tail=True):
        if not isinstance(row, dict) or "id" not in row:
            raise DataError(f"{path}:{number}: an output record without an 'id'; this file was not written by "
                            "vlmalign-build-negatives (choose another --output; the file is left untouched)")
        ids.add(str(row["id"]))
    return ids


class JsonlAppender:
    """Appends one JSON object per line, flushed at once, so a crash loses at most the line in flight.

    The file is opened on the first write, so a run with nothing to write creates no file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._handle: IO[str] | None = None

    def __enter__(self) -> JsonlAppender:
        return self

    def write(self, row: dict[str, Any]) -> None:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
        self._handle.write(json.dumps(row, ensure_ascii=False) + "\n")  # one write: the line and its newline
        self._handle.flush()

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None
