"""Validate an LLM's JSON answer into turns, or reject the sample with a counted reason.

A sample is all or nothing: one malformed item means the model did not follow the format for this
sample, and half-trusted turns are worse training data than none. Reasons (``RejectedSample.reason``):
invalid_json, not_a_list, bad_item, empty_field, too_long, unknown_error_type, bad_answer_format.
"""

from __future__ import annotations

from vlmalign.llm.parse import MAX_FIELD_CHARS, RejectedSample, load_json_list
from vlmalign.negatives.codebook import Codebook
from vlmalign.negatives.interface import Turn


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
