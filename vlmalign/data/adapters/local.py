"""Generic local JSON / JSON-lines / parquet: one example per row, field names configurable.

Preference rows need prompt, chosen, rejected; SFT rows need prompt and response. The image field holds
a path (relative to ``data.image_root``), raw bytes, or a ``{'bytes', 'path'}`` struct (a ``datasets``
``Image`` column written to parquet).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vlmalign.data.adapters.base import TASKS, Adapter, Record
from vlmalign.data.adapters.validation import check_pair, response_field, strip_image_placeholders, text_field
from vlmalign.errors import ConfigError


class LocalAdapter(Adapter):
    name = "local"

    def __init__(self, task: str = "preference", prompt_field: str = "prompt", chosen_field: str = "chosen",
                 rejected_field: str = "rejected", response_field: str = "response", image_field: str = "image",
                 id_field: str | None = "id") -> None:
        if task not in TASKS:
            raise ConfigError(f"data.adapter.task={task!r} is not one of {TASKS}")
        self.task = task
        self.fields = dict(prompt=prompt_field, chosen=chosen_field, rejected=rejected_field,
                           response=response_field, image=image_field, id=id_field)
        wanted = ("chosen", "rejected") if task == "preference" else ("response",)
        self.schema = (f"{task} rows with fields {prompt_field!r}, "
                       + ", ".join(repr(self.fields[k]) for k in wanted)
                       + f" and {image_field!r} (a path, bytes or {{'bytes', 'path'}})")

    def records(self, row: Mapping[str, Any]) -> list[Record]:
        f = self.fields
        prompt = strip_image_placeholders(text_field(row, f["prompt"]))
        if self.task == "sft":
            responses = {"chosen": response_field(row, f["response"])}
        else:
            responses = {"chosen": response_field(row, f["chosen"]), "rejected": response_field(row, f["rejected"])}
            check_pair(responses["chosen"], responses["rejected"])
        return [Record(row.get(f["image"]), prompt, responses)]

    def row_id(self, row: Mapping[str, Any]) -> str | None:
        key = self.fields["id"]
        return None if not key or row.get(key) is None else str(row[key])

    def identity(self) -> dict[str, Any]:
        return {"task": self.task, "fields": dict(self.fields)}
