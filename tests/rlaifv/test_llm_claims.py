"""The LLM claim splitter: replies parsed into claims; malformed ones rejected per response and counted; cached."""

from __future__ import annotations

import json

from vlmalign.pipelines.rlaifv.llm_claims import LLMClaimSplitter


class ScriptedBackend:
    """Replies from a list, counting calls (stands in for an HF model or an HTTP endpoint)."""

    def __init__(self, replies: list[str]) -> None:
        self.replies, self.calls = list(replies), 0

    @property
    def identity(self) -> dict:
        return {"backend": "scripted"}

    def complete(self, prompt: str) -> str:
        self.calls += 1
        return self.replies.pop(0)


GOOD = json.dumps([{"claim": "There is a dog.", "question": "Is there a dog"},
                   {"claim": "The dog is brown.", "question": "Is the dog brown?"}])


def test_a_valid_reply_becomes_claims_with_questions():
    claims = LLMClaimSplitter(ScriptedBackend([f"```json\n{GOOD}\n```"])).split("A brown dog sits.")
    assert [(c.text, c.question) for c in claims] == [("There is a dog.", "Is there a dog?"),
                                                      ("The dog is brown.", "Is the dog brown?")]
    assert all(c.fact is None for c in claims)  # free text: no structured fact for an oracle


def test_malformed_replies_are_rejected_per_response_and_counted():
    replies = ["no json here", json.dumps({"claim": "x"}), json.dumps([{"claim": "x"}]),
               json.dumps([{"claim": " ", "question": "?"}])]
    splitter = LLMClaimSplitter(ScriptedBackend(replies))
    assert [splitter.split(f"response {i}") for i in range(4)] == [[], [], [], []]
    assert dict(splitter.rejected) == {"invalid_json": 1, "not_a_list": 1, "bad_item": 1, "empty_field": 1}
    assert splitter.split("   ") == []  # nothing to split: no call, no rejection
    assert sum(splitter.rejected.values()) == 4


def test_replies_are_cached_so_a_rerun_asks_nothing(tmp_path):
    first = ScriptedBackend([GOOD])
    assert len(LLMClaimSplitter(first, cache_dir=tmp_path).split("A brown dog sits.")) == 2
    again = ScriptedBackend([])
    assert len(LLMClaimSplitter(again, cache_dir=tmp_path).split("A brown dog sits.")) == 2
    assert (first.calls, again.calls) == (1, 0)
