"""TRL's vision preference format (``DPOTrainer``; e.g. HuggingFaceH4/rlaif-v_formatted).

Row: ``images`` (a list of images: ``{'bytes', 'path'}``, bytes or paths), and ``prompt``, ``chosen``,
``rejected`` either as strings or conversational, as lists of messages::

    prompt:   [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "..."}]}]
    chosen:   [{"role": "assistant", "content": [{"type": "text", "text": "..."}]}]

A message's content may also be a plain string. One image and one user turn per row are supported
(a system message or an earlier exchange is an error, not silently dropped).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vlmalign.data.adapters.base import Adapter, Record
from vlmalign.data.adapters.validation import (
    RowError,
    check_pair,
    response_text,
    strip_image_placeholders,
)


def message_text(message: Any, role: str, field: str) -> tuple[str, int]:
    """(text, number of image entries) of a ``{"role", "content"}`` message that must have ``role``."""
    if not isinstance(message, Mapping) or "content" not in message:
        raise RowError("bad_value", f"field {field!r}: a message must be {{'role', 'content'}}, got {message!r:.80}")
    if message.get("role") != role:
        raise RowError("bad_value", f"field {field!r}: expected one {role!r} message, got role "
                                    f"{message.get('role')!r} (one user turn per row is supported)")
    content = message["content"]
    if isinstance(content, str):
        return content, content.count("<image>")
    if not isinstance(content, Sequence):
        raise RowError("bad_value", f"field {field!r}: content must be a string or a list of parts")
    texts, images = [], 0
    for part in content:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "image":
            images += 1
        elif kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        else:
            raise RowError("bad_value", f"field {field!r}: content parts must be {{'type': 'text', 'text'}} or "
                                        f"{{'type': 'image'}}, got {part!r:.80}")
    return "".join(texts), images


def turn_text(row: Mapping[str, Any], field: str, role: str) -> str:
    """A string field, or a conversational one holding exactly one ``role`` message."""
    value = row.get(field)
    if value is None:
        raise RowError("missing_field", f"missing field {field!r}")
    if isinstance(value, str):
        return value
    if not isinstance(value, Sequence) or len(value) != 1:
        count = len(value) if isinstance(value, Sequence) else type(value).__name__
        raise RowError("bad_value", f"field {field!r} must be a string or a list of one {role!r} message, got {count}")
    text, images = message_text(value[0], role, field)
    if images > 1 or (images and role != "user"):
        raise RowError("bad_value", f"field {field!r} has {images} image parts; one image, in the prompt, is supported")
    return text


def row_prompt(row: Mapping[str, Any]) -> str:
    """The one user turn of a TRL row's ``prompt``, without its image placeholder."""
    prompt = turn_text(row, "prompt", "user")
    if not prompt.strip():
        raise RowError("missing_field", "field 'prompt' is empty")
    return strip_image_placeholders(prompt)


def row_image(row: Mapping[str, Any]) -> Any:
    """The one image of a TRL row's ``images`` list (a bare image value is accepted as a list of one)."""
    images = row.get("images")
    if images is None or (isinstance(images, Sequence) and not isinstance(images, (str, bytes)) and not images):
        raise RowError("missing_image", "field 'images' is missing or empty")
    if isinstance(images, (str, bytes, Mapping)):
        images = [images]
    if len(images) != 1:
        raise RowError("bad_value", f"field 'images' has {len(images)} images; one image per row is supported")
    return images[0]


class TrlPreferenceAdapter(Adapter):
    name = "trl_preference"
    task = "preference"
    default_format = "parquet"
    schema = "TRL preference rows: images (list of one image), prompt, chosen, rejected (strings or messages)"

    def records(self, row: Mapping[str, Any]) -> list[Record]:
        prompt = row_prompt(row)
        chosen = response_text(turn_text(row, "chosen", "assistant"), "'chosen'")
        rejected = response_text(turn_text(row, "rejected", "assistant"), "'rejected'")
        check_pair(chosen, rejected)
        return [Record(row_image(row), prompt, {"chosen": chosen, "rejected": rejected})]
