"""Row checks shared by the adapters, and the ``data.on_error`` policy.

An adapter raises ``RowError(reason, detail)`` for a row it cannot use; the reader adds where the row
is (``file: row N (id X)``) with ``RowError.at`` and hands it to ``RowPolicy``: ``raise`` stops at the
first bad row with that message, ``skip`` drops the row (or the one pair of it that is bad), logs it
and counts it by reason, so a run reports exactly what it left out.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from vlmalign.errors import ConfigError, DataError

log = logging.getLogger("vlmalign.data")

ON_ERROR = ("raise", "skip")
REASONS = ("missing_field", "bad_value", "missing_image", "unreadable_image", "empty_response", "identical_responses")
IMAGE_PLACEHOLDER = "<image>"


class RowError(DataError):
    """One unusable row (or pair); ``reason`` is one of ``REASONS``, the message names file and row once placed."""

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown row-error reason {reason!r}")
        super().__init__(detail)
        self.reason, self.detail, self.where = reason, detail, None

    def at(self, where: str) -> RowError:
        self.where = where
        self.args = (f"{where}: {self.detail}",)
        return self


def text_field(row: Mapping[str, Any], name: str) -> str:
    """Field ``name`` as a non-blank string (a prompt or question)."""
    value = row.get(name)
    if value is None:
        raise RowError("missing_field", f"missing field {name!r}")
    if not isinstance(value, str):
        raise RowError("bad_value", f"field {name!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise RowError("missing_field", f"field {name!r} is empty")
    return value


def response_field(row: Mapping[str, Any], name: str) -> str:
    """Field ``name`` as a response: absent is a missing field, blank is an empty response."""
    value = row.get(name)
    if value is None:
        raise RowError("missing_field", f"missing field {name!r}")
    return response_text(value, repr(name))


def response_text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise RowError("bad_value", f"response {what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise RowError("empty_response", f"response {what} is empty")
    return value


def check_pair(chosen: str, rejected: str) -> None:
    """A pair whose responses are the same text teaches nothing (its DPO margin is 0 by construction)."""
    if chosen.strip() == rejected.strip():
        raise RowError("identical_responses", "chosen and rejected are identical")


def strip_image_placeholders(text: str, max_images: int = 1) -> str:
    """The prompt without ``<image>`` placeholders: the processor's chat template places the image itself
    (and expands it to the model's number of image tokens); a literal ``<image>`` left in the text would be
    counted as a second image. One image per row is supported."""
    count = text.count(IMAGE_PLACEHOLDER)
    if count > max_images:
        raise RowError("bad_value", f"the prompt has {count} {IMAGE_PLACEHOLDER} placeholders; one image per row "
                                    "is supported")
    cleaned = re.sub(r"\s*" + re.escape(IMAGE_PLACEHOLDER) + r"\s*", " ", text).strip()
    if not cleaned:
        raise RowError("missing_field", "the prompt is empty once its image placeholder is removed")
    return cleaned


class RowPolicy:
    """``on_error=raise``: re-raise the first RowError. ``skip``: log it, count it by reason, go on."""

    def __init__(self, on_error: str) -> None:
        if on_error not in ON_ERROR:
            raise ConfigError(f"data.on_error={on_error!r} is not one of {ON_ERROR}")
        self.on_error = on_error
        self.counts: Counter[str] = Counter()
        self.skipped: list[str] = []  # every skipped row's message, in reading order

    def handle(self, error: RowError) -> None:
        if self.on_error == "raise":
            raise error
        self.counts[error.reason] += 1
        self.skipped.append(str(error))
        log.warning("data.on_error=skip: skipped %s", error)

    def summary(self) -> dict[str, Any]:
        return {"skipped": sum(self.counts.values()), "by_reason": dict(sorted(self.counts.items()))}


def check_record(responses: Mapping[str, str], dialogue: Sequence[tuple[str, str]]) -> None:
    """Every response non-blank, a pair's two responses different, every dialogue answer non-blank. Adapters
    check their own fields first; this holds for every record whatever built it (VLFeedback's pairs)."""
    for view, text in responses.items():
        response_text(text, repr(view))
    if "chosen" in responses and "rejected" in responses:
        check_pair(responses["chosen"], responses["rejected"])
    for index, (_, answer) in enumerate(dialogue):
        response_text(answer, f"of turn {index}")
