"""The local HF causal-LM backend with a tiny, randomly initialised Llama: its garbage is rejected and counted."""

import pytest

from vlmalign.llm import BackendError, HFCausalLMBackend
from vlmalign.negatives import PreferenceSample
from vlmalign.negatives.llm import LLMNegativeBuilder

WORDS = "alpha beta gamma delta epsilon zeta eta theta".split()  # no brackets: the model cannot emit "[]"


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from vlmalign.models.tokenizer import train_word_tokenizer

    tokenizer = train_word_tokenizer([" ".join(WORDS)], extra_words=WORDS)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_lm")
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def samples(n):
    return [PreferenceSample(f"s{i}", "describe the image .", "a red circle .", f"a blue circle {WORDS[i]} .",
                             image=f"{i}.png") for i in range(n)]


def test_garbage_from_a_random_lm_is_rejected_per_sample_and_cached(tiny_lm, tmp_path):
    backend = HFCausalLMBackend(tiny_lm, max_new_tokens=6, device="cpu")
    builder = LLMNegativeBuilder(backend, cache_dir=tmp_path)
    outcomes = list(builder.build_many(samples(3)))
    assert all(o.is_rejected for o in outcomes)
    assert builder.stats.as_dict()["rejected_reasons"] == {"invalid_json": 3}
    assert (builder.stats.built, builder.stats.empty, builder.stats.cached) == (0, 0, 0)

    again = HFCausalLMBackend(tiny_lm, max_new_tokens=6, device="cpu")
    rebuilt = LLMNegativeBuilder(again, cache_dir=tmp_path)
    assert [o.rejection.raw for o in rebuilt.build_many(samples(3))] == [o.rejection.raw for o in outcomes]
    assert rebuilt.stats.cached == 3 and rebuilt.stats.rejected == 3
    assert "_parts" not in vars(again)  # the model was never even loaded


def test_greedy_decoding_is_deterministic_and_settings_change_the_cache_key(tiny_lm):
    backend = HFCausalLMBackend(tiny_lm, max_new_tokens=4, device="cpu")
    assert backend.complete("alpha beta") == backend.complete("alpha beta")
    assert HFCausalLMBackend(tiny_lm, max_new_tokens=5).identity != backend.identity


def test_a_directory_without_a_model_is_a_clear_error(tmp_path):
    with pytest.raises(BackendError, match="no config.json"):
        HFCausalLMBackend(tmp_path)


def test_a_chat_template_is_applied_when_the_tokenizer_has_one(tiny_lm, tmp_path, monkeypatch):
    import shutil

    from transformers import AutoTokenizer

    chat = tmp_path / "chat"
    shutil.copytree(tiny_lm, chat)
    tokenizer = AutoTokenizer.from_pretrained(chat)
    tokenizer.chat_template = "{% for m in messages %}alpha {{ m['content'] }} beta{% endfor %}"
    tokenizer.save_pretrained(chat)
    backend = HFCausalLMBackend(chat, max_new_tokens=3, device="cpu")
    tokenizer = backend._parts[0]
    seen, original = [], type(tokenizer).__call__

    def spy(self, text, **kwargs):
        seen.append((text, kwargs.get("add_special_tokens", True)))
        return original(self, text, **kwargs)

    monkeypatch.setattr(type(tokenizer), "__call__", spy)
    backend.complete("gamma")
    assert seen == [("alpha gamma beta", False)]  # the template's text, without a second BOS
