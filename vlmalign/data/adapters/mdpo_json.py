"""mDPO's preference JSON (luka-group/mDPO ``data/sample_data.json``, fwnlp/mDPO-preference-data).

A JSON array of ``{"img_path", "prompt", "chosen", "rejected"}``. The prompt is a whole Vicuna/Bunny
conversation: ``"A chat between ... USER: <image>\\nQuestion? ASSISTANT:"``. Only the user's question is
kept (the model's own chat template and image placement replace the wrapper); a prompt without the
``USER: ... ASSISTANT:`` wrapper is taken as the question itself. ``img_path`` is relative to ``data.image_root``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vlmalign.data.adapters.base import Adapter, Record
from vlmalign.data.adapters.validation import check_pair, response_field, strip_image_placeholders, text_field

WRAPPED = re.compile(r"USER:\s*(?P<question>.*?)\s*ASSISTANT:\s*$", re.DOTALL)


def user_question(prompt: str) -> str:
    """The user's turn of a ``... USER: q ASSISTANT:`` prompt (the whole prompt when it is not wrapped)."""
    match = WRAPPED.search(prompt)
    return match.group("question") if match else prompt


class MdpoJsonAdapter(Adapter):
    name = "mdpo_json"
    task = "preference"
    default_format = "json"
    schema = "mDPO JSON: [{img_path, prompt (with <image>), chosen, rejected}, ...]"

    def records(self, row: Mapping[str, Any]) -> list[Record]:
        prompt = strip_image_placeholders(user_question(text_field(row, "prompt")))
        chosen, rejected = response_field(row, "chosen"), response_field(row, "rejected")
        check_pair(chosen, rejected)
        return [Record(row.get("img_path"), prompt, {"chosen": chosen, "rejected": rejected})]
