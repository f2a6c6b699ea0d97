"""Unpaired (KTO) rows: one response per prompt with a boolean label, desirable (true) or undesirable (false).

``LocalUnpairedAdapter``: KTO's own format from local JSON / JSON-lines / parquet, one example per row, the
field names configurable (prompt, completion, label, image). ``TrlUnpairedAdapter``: TRL's unpaired vision
format (``KTOTrainer``): ``images`` (a list of one image), ``prompt``, ``completion`` (strings or conversational
messages, as ``trl_preference``) and ``label``. A record's response is under its label's view (``desirable``
or ``undesirable``); ``vlmalign.data.unpaired`` adds the other views KTO scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vlmalign.data.adapters.base import Adapter, Record
from vlmalign.data.adapters.trl_preference import row_image, row_prompt, turn_text
from vlmalign.data.adapters.validation import (
    RowError,
    response_field,
    response_text,
    strip_image_placeholders,
    text_field,
)
from vlmalign.data.unpaired import label_view


def row_label(row: Mapping[str, Any], name: str) -> bool:
    """Field ``name`` as a label: a boolean; 0/1 and "true"/"false" pass too (some writers store booleans as integers,
    and Arrow reads a JSON column that mixes booleans with strings as strings)."""
    value = row.get(name)
    if value is None:
        raise RowError("missing_field", f"missing label field {name!r} (true: desirable, false: undesirable)")
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise RowError("bad_value", f"label field {name!r} must be true or false, got {value!r:.40}")


class LocalUnpairedAdapter(Adapter):
    name = "kto_unpaired"
    task = "unpaired"

    def __init__(self, prompt_field: str = "prompt", completion_field: str = "completion", label_field: str = "label",
                 image_field: str = "image", id_field: str | None = "id") -> None:
        self.fields = dict(prompt=prompt_field, completion=completion_field, label=label_field, image=image_field,
                           id=id_field)
        self.schema = (f"unpaired rows with fields {prompt_field!r}, {completion_field!r}, {label_field!r} "
                       f"(true/false) and {image_field!r} (a path, bytes or {{'bytes', 'path'}})")

    def records(self, row: Mapping[str, Any]) -> list[Record]:
        f = self.fields
        prompt = strip_image_placeholders(text_field(row, f["prompt"]))
        completion = response_field(row, f["completion"])
        return [Record(row.get(f["image"]), prompt, {label_view(row_label(row, f["label"])): completion})]

    def row_id(self, row: Mapping[str, Any]) -> str | None:
        key = self.fields["id"]
        return None if not key or row.get(key) is None else str(row[key])

    def identity(self) -> dict[str, Any]:
        return {"fields": dict(self.fields)}


class TrlUnpairedAdapter(Adapter):
    name = "trl_unpaired"
    task = "unpaired"
    default_format = "parquet"
    schema = "TRL unpaired rows: images (list of one image), prompt, completion (strings or messages), label (bool)"

    def records(self, row: Mapping[str, Any]) -> list[Record]:
        completion = response_text(turn_text(row, "completion", "assistant"), "'completion'")
        return [Record(row_image(row), row_prompt(row), {label_view(row_label(row, "label")): completion})]
