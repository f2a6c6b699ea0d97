"""Validate an LLM's JSON answer into turns, or reject the sample with a counted reason.

A sample is all or nothing: one malformed item means the model did not follow the format for this
sample, and half-trusted turns are worse training data than none. Reasons (``RejectedSample.reason``):
invalid_json, not_a_list, bad_item, empty_field, too_long, unknown_error_type, bad_answer_format.
"""

from __future__ import annotations

import json
import re
from typing import Any

from vlmalign.negatives.codebook import Codebook
from vlmalign.negatives.interface import RejectedSample, Turn

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


def parse_turns(text: str, codebook: Codebook) -> list[Turn]:
    """Turns from a completion; raises ``RejectedSample`` naming the first problem."""
    value = load_json_list(text)
    if not isinstance(value, list):
        raise RejectedSample("not_a_list", f"expected a JSON list, got a {type(value).__name__}", raw=text)
    turns = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not {"error_type", "question", "answer"} <= set(item):
            raise RejectedSample("bad_item", f"item {i} is not an object with error_type, question and answer",
                                 raw=text)
        fields = {}
        for key in ("error_type", "question", "answer"):
            field = item[key]
            if not isinstance(field, str) or not field.strip():
                raise RejectedSample("empty_field", f"item {i}: {key!r} must be a non-empty string", raw=text)
            if len(field) > MAX_FIELD_CHARS:
                raise RejectedSample("too_long", f"item {i}: {key!r} is over {MAX_FIELD_CHARS} characters", raw=text)
            fields[key] = field.strip()
        error_type = codebook.lookup(fields["error_type"])
        if error_type is None:
            raise RejectedSample("unknown_error_type", f"item {i}: {fields['error_type']!r} is not one of "
                                 f"{', '.join(codebook.names)}", raw=text)
        problem = error_type.answer_problem(fields["answer"])
        if problem:
            raise RejectedSample("bad_answer_format", f"item {i}: {problem}, got {fields['answer']!r}", raw=text)
        turns.append(Turn(fields["question"], fields["answer"], error_type.name))
    return turns
