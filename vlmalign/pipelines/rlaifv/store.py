"""A round's stage outputs on disk: one checksummed JSON-lines file per stage, written atomically.

A stage counts as done when its file exists and matches its recorded SHA-256, so a run killed in the
middle of a stage (or of writing its file) redoes that stage only; a file that fails its checksum is
moved aside (kept for inspection) and its stage rerun.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from vlmalign.utils.files import digest_problem, quarantine, write_text_atomic

log = logging.getLogger(__name__)


class RoundStore:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def path(self, stage: str) -> Path:
        return self.directory / f"{stage}.jsonl"

    def done(self, stage: str) -> bool:
        path = self.path(stage)
        if not path.exists():
            return False
        problem = digest_problem(path)
        if problem is None:
            return True
        log.warning("%s; moved to %s and redoing the stage", problem, quarantine(path))
        return False

    def read(self, stage: str) -> list[dict]:
        return [json.loads(line) for line in self.path(stage).read_text().splitlines()]

    def write(self, stage: str, records: list[dict]) -> None:
        write_text_atomic(self.path(stage), "".join(json.dumps(r, sort_keys=True) + "\n" for r in records),
                          checksum=True)

    def stage(self, stage: str, compute: Callable[[], list[dict]]) -> list[dict]:
        """The stored records when the stage is done, else ``compute()``'s, saved first."""
        if self.done(stage):
            log.info("%s: %s already done, reusing it", self.directory.name, stage)
            return self.read(stage)
        records = compute()
        self.write(stage, records)
        return records
