"""What every adapter turns a row of its public format into: ``Record``s, one per training example."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TASKS = ("preference", "sft")  # what the generic local adapter reads; unpaired rows: adapters/unpaired.py


@dataclass(frozen=True)
class Record:
    """One example: the row's raw image value, the prompt (image placeholders removed), and either the
    responses to it (``chosen`` and ``rejected`` for preference, ``chosen`` for one-turn SFT, ``desirable`` or
    ``undesirable`` for unpaired data, the view naming its label) or, for a
    multi-turn SFT conversation, the ``dialogue`` of (question, answer) turns (the first question is ``prompt``).
    ``key`` names the example inside its row (VLFeedback's ``"2>0"`` pair); ``meta`` rides along."""

    image: Any
    prompt: str
    responses: dict[str, str]
    dialogue: tuple[tuple[str, str], ...] = ()
    key: str = ""
    meta: dict = field(default_factory=dict)


class Adapter:
    """Turns one row of a public dataset format into records; bad rows raise ``RowError``.

    ``records`` is called once per row when the dataset is checked and again whenever an example is
    read, so it must be a pure function of the row. ``scan`` also reports rows or pairs that the format
    itself drops (not errors: e.g. VLFeedback's tied ratings).
    """

    name = "adapter"
    task = "preference"
    default_format = "json"
    schema = ""  # the public row layout, quoted in missing-field errors

    def records(self, row: Mapping[str, Any]) -> list[Record]:
        raise NotImplementedError

    def scan(self, row: Mapping[str, Any]) -> tuple[list[Record], dict[str, int]]:
        return self.records(row), {}

    def row_id(self, row: Mapping[str, Any]) -> str | None:
        """The row's own id, if its format has one (quoted in error messages)."""
        return None

    def identity(self) -> dict[str, Any]:
        """Settings that change the records (reference-cache fingerprint)."""
        return {}
