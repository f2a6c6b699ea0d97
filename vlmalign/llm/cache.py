"""On-disk cache of completions keyed by (backend identity, prompt), so a rebuild asks the model nothing.

The raw completion is stored, not the parsed turns: fixing the validator re-parses cached text for
free. Entries are written atomically (temp file + rename), so concurrent builders or a crash never
leave a half-written entry that a later run would trust.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vlmalign.utils.files import fingerprint, write_json_atomic


class CompletionCache:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def key(self, backend_identity: dict[str, Any], prompt: str) -> str:
        return fingerprint({"backend": backend_identity, "prompt": prompt}, length=40)

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        try:
            entry = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        completion = entry.get("completion") if isinstance(entry, dict) else None
        return completion if isinstance(completion, str) else None

    def put(self, key: str, backend_identity: dict[str, Any], completion: str) -> None:
        write_json_atomic(self._path(key), {"backend": backend_identity, "completion": completion})

    def complete(self, backend, prompt: str) -> tuple[str, bool]:
        """(``backend``'s reply to ``prompt``, whether it came from the cache); a new reply is stored."""
        identity = backend.identity
        key = self.key(identity, prompt)
        cached = self.get(key)
        if cached is not None:
            return cached, True
        completion = backend.complete(prompt)
        self.put(key, identity, completion)
        return completion, False
