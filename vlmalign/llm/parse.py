"""Reading an LLM's completion: the JSON list it was asked for, or a rejection naming why not.

A completion that does not parse is rejected, never repaired by guessing: half-trusted output is worse training
data than none. Callers count the rejections by ``RejectedSample.reason``.
"""

from __future__ import annotations

import json
import re
from typing import Any


class RejectedSample(Exception):
    """A sample the builder cannot turn into turns; ``reason`` is a short code counted in the stats."""

    def __init__(self, reason: str, detail: str = "", raw: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail, self.raw = reason, detail, raw


MAX_FIELD_CHARS = 500  # a "question" longer than this is the model rambling, not a turn
_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


def load_json_list(text: str) -> Any:
    """The JSON value of ``text``, tolerating a Markdown code fence or prose around one list."""
    stripped = _FENCE.sub("", text.strip())
    try:
        return json.loads(stripped)
    except json.JSONDecodeError:
        pass
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\[", stripped):  # the first "[" that opens a complete JSON list
        try:
            value, _ = decoder.raw_decode(stripped, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, list):
            return value
    raise RejectedSample("invalid_json", f"no JSON list in the completion: {text[:120]!r}", raw=text)
