"""LLM-prompted G: prompt, JSON validation, per-sample rejection counts, the cache, the HTTP backend."""

import json
import socket

import pytest

from vlmalign.llm import BackendError, OpenAICompatibleBackend
from vlmalign.negatives import PreferenceSample, RejectedSample, Turn, load_codebook
from vlmalign.negatives.llm import LLMNegativeBuilder, parse_turns, render_prompt


def sample(marker: str) -> PreferenceSample:
    return PreferenceSample(marker, "What is on the table?", "A red mug and a laptop on a wooden table.",
                            f"A blue mug, two laptops and a cat on a glass table. [{marker}]", image=f"{marker}.jpg")


GOOD = json.dumps([
    {"error_type": "attribute", "question": "What color is the mug?", "answer": "The mug is red."},
    {"error_type": "Object Existence", "question": "Is there a cat on the table?", "answer": "No."},
    {"error_type": "count", "question": "How many laptops are there?", "answer": "There is one laptop."},
])
BAD_REPLIES = {
    "invalid_json": "Sure! The rejected response says the mug is blue, but it is red.",
    "not_a_list": '{"error_type": "attribute", "question": "What color is the mug?", "answer": "Red."}',
    "bad_item": '[{"question": "What color is the mug?", "answer": "Red."}]',
    "empty_field": '[{"error_type": "attribute", "question": " ", "answer": "Red."}]',
    "unknown_error_type": '[{"error_type": "grammar", "question": "Is it well written?", "answer": "No."}]',
    "bad_answer_format": '[{"error_type": "existence", "question": "Is there a cat?", "answer": "Maybe."}]',
    "too_long": json.dumps([{"error_type": "scene", "question": "Where? " * 200, "answer": "Inside."}]),
}


def test_prompt_carries_the_codebook_and_both_responses():
    codebook = load_codebook()
    prompt = render_prompt(sample("m"), codebook)
    for error_type in codebook:
        assert f"- {error_type.name} ({error_type.title}): {error_type.description}" in prompt
    assert "What is on the table?" in prompt and "A red mug and a laptop" in prompt and "[m]" in prompt
    assert ", ".join(codebook.names) in prompt


def test_good_json_becomes_turns_with_canonical_types_even_fenced_or_wrapped_in_prose():
    expected = [Turn("What color is the mug?", "The mug is red.", "attribute"),
                Turn("Is there a cat on the table?", "No.", "existence"),
                Turn("How many laptops are there?", "There is one laptop.", "count")]
    codebook = load_codebook()
    assert parse_turns(GOOD, codebook) == expected
    assert parse_turns(f"```json\n{GOOD}\n```", codebook) == expected
    assert parse_turns(f"Here are the turns [all 3]:\n{GOOD}\nHope this helps.", codebook) == expected
    assert parse_turns("[]", codebook) == []


@pytest.mark.parametrize("reason", list(BAD_REPLIES))
def test_malformed_output_is_rejected_with_its_reason(reason):
    with pytest.raises(RejectedSample) as caught:
        parse_turns(BAD_REPLIES[reason], load_codebook())
    assert caught.value.reason == reason and caught.value.raw == BAD_REPLIES[reason]


class ScriptedBackend:
    """An in-process backend: one reply for every prompt; counts calls."""

    def __init__(self, reply: str) -> None:
        self.reply, self.calls = reply, 0

    @property
    def identity(self):
        return {"backend": "scripted", "reply": self.reply}

    def complete(self, prompt: str) -> str:
        self.calls += 1
        return self.reply


def test_every_codebook_error_type_is_accepted_from_an_llm_including_scene():
    codebook = load_codebook()
    reply = json.dumps([{"error_type": t.title, **t.example} for t in codebook])
    turns = LLMNegativeBuilder(ScriptedBackend(reply), codebook=codebook).build(sample("x"))
    assert [t.error_type for t in turns] == list(codebook.names)
    assert turns[-1] == Turn(codebook["scene"].example["question"], codebook["scene"].example["answer"], "scene")


def test_http_builder_counts_built_rejected_and_cached_and_a_rebuild_asks_nothing(chat_server, tmp_path):
    chat_server.replies = {"[good]": GOOD, "[none]": "[]", **{f"[{r}]": reply for r, reply in BAD_REPLIES.items()}}
    samples = [sample(m) for m in ("good", "none", *BAD_REPLIES)]

    def build_all():
        backend = OpenAICompatibleBackend(chat_server.base_url, "fake-model", timeout_s=10, retries=0)
        builder = LLMNegativeBuilder(backend, cache_dir=tmp_path / "cache")
        return builder, list(builder.build_many(samples))

    builder, outcomes = build_all()
    assert chat_server.num_requests == len(samples)
    assert [len(o.turns) for o in outcomes[:2]] == [3, 0]
    assert [o.rejection.reason for o in outcomes[2:]] == list(BAD_REPLIES)
    stats = builder.stats.as_dict()
    assert (stats["built"], stats["empty"], stats["rejected"], stats["cached"]) == (1, 1, len(BAD_REPLIES), 0)
    assert stats["rejected_reasons"] == {r: 1 for r in sorted(BAD_REPLIES)}

    rebuilt, again = build_all()
    assert chat_server.num_requests == len(samples)  # every completion came from the cache
    assert rebuilt.stats.cached == len(samples) and rebuilt.stats.rejected == len(BAD_REPLIES)
    assert [(o.turns, o.is_rejected) for o in again] == [(o.turns, o.is_rejected) for o in outcomes]


def test_the_cache_key_includes_the_model_and_no_cache_always_asks(chat_server, tmp_path):
    chat_server.replies = {"[good]": GOOD}
    for model in ("model-a", "model-b", "model-a"):
        backend = OpenAICompatibleBackend(chat_server.base_url, model, retries=0)
        LLMNegativeBuilder(backend, cache_dir=tmp_path).build(sample("good"))
    assert chat_server.num_requests == 2
    uncached = LLMNegativeBuilder(OpenAICompatibleBackend(chat_server.base_url, "model-a", retries=0))
    uncached.build(sample("good"))
    uncached.build(sample("good"))
    assert chat_server.num_requests == 4


def test_requests_carry_model_and_key_from_the_environment(chat_server, monkeypatch):
    monkeypatch.setenv("FAKE_KEY", "sk-test")
    backend = OpenAICompatibleBackend(chat_server.base_url, "fake-model", api_key_env="FAKE_KEY", retries=0)
    assert backend.complete("hello [none]") == "[]"
    assert chat_server.headers[-1]["Authorization"] == "Bearer sk-test"
    assert "sk-test" not in json.dumps(backend.identity)


def test_server_errors_are_retried_and_client_errors_are_not(chat_server):
    chat_server.replies = {"[good]": GOOD}
    chat_server.fail_next = [500, 503]
    backend = OpenAICompatibleBackend(chat_server.base_url, "m", retries=2, backoff_s=0)
    assert backend.complete("[good]") == GOOD and chat_server.num_requests == 3
    chat_server.fail_next = [401]
    with pytest.raises(BackendError, match="HTTP 401"):
        backend.complete("[good]")
    assert chat_server.num_requests == 4


def test_an_unreachable_endpoint_is_a_backend_error_not_a_rejection():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = OpenAICompatibleBackend(f"http://127.0.0.1:{port}/v1", "m", timeout_s=2, retries=1, backoff_s=0)
    builder = LLMNegativeBuilder(backend)
    with pytest.raises(BackendError, match="cannot reach .*2 attempt"):
        builder.try_build(sample("x"))
    assert builder.stats.rejected == 0
