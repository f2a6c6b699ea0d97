"""LLaVA conversation JSON for SFT (LLaVA-Instruct-150K, llava_v1_5_mix665k and their many descendants).

A JSON array of ``{"id", "image", "conversations": [{"from": "human", "value": "<image>\\n..."},
{"from": "gpt", "value": "..."}, ...]}``; ``image`` is relative to ``data.image_root`` (e.g.
``coco/train2017/000000033471.jpg``). One exchange gives a one-turn example (``chosen`` = the answer);
several give a multi-turn dialogue labelled on every answer (the image goes with the first question).
Text-only rows (no ``image``) are missing an image: skip them with ``data.on_error=skip``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vlmalign.data.adapters.base import Adapter, Record
from vlmalign.data.adapters.validation import RowError, response_text, strip_image_placeholders

ROLES = ("human", "gpt")


class LlavaSftAdapter(Adapter):
    name = "llava_sft"
    task = "sft"
    default_format = "json"
    schema = 'LLaVA JSON: [{id, image, conversations: [{"from": "human"|"gpt", "value"}, ...]}, ...]'

    def records(self, row: Mapping[str, Any]) -> list[Record]:
        turns = row.get("conversations")
        if turns is None:
            raise RowError("missing_field", "missing field 'conversations'")
        if not isinstance(turns, Sequence) or isinstance(turns, str) or not turns:
            raise RowError("bad_value", "field 'conversations' must be a non-empty list of {from, value} turns")
        if len(turns) % 2:
            raise RowError("bad_value", f"field 'conversations' has {len(turns)} turns; expected human/gpt pairs")
        dialogue = []
        for index in range(0, len(turns), 2):
            question, answer = (self._value(turns[index + k], index + k, ROLES[k]) for k in (0, 1))
            if not question.strip():
                raise RowError("missing_field", f"conversations[{index}] (the question) is empty")
            if index == 0:
                question = strip_image_placeholders(question)
            elif "<image>" in question:
                raise RowError("bad_value", f"conversations[{index}] has an <image> placeholder; the image must "
                                            "come with the first question")
            dialogue.append((question, response_text(answer, f"conversations[{index + 1}]")))
        prompt = dialogue[0][0]
        if len(dialogue) == 1:
            return [Record(row.get("image"), prompt, {"chosen": dialogue[0][1]})]
        return [Record(row.get("image"), prompt, {}, dialogue=tuple(dialogue))]

    @staticmethod
    def _value(turn: Any, index: int, role: str) -> str:
        if not isinstance(turn, Mapping) or turn.get("from") != role or not isinstance(turn.get("value"), str):
            got = turn.get("from") if isinstance(turn, Mapping) else type(turn).__name__
            raise RowError("bad_value", f"conversations[{index}] must be {{'from': {role!r}, 'value': str}} "
                                        f"(turns alternate human, gpt), got from={got!r}")
        return turn["value"]

    def row_id(self, row: Mapping[str, Any]) -> str | None:
        return None if row.get("id") is None else str(row["id"])
