"""Shared fixtures: a tiny LLaVA built from config classes with a hand-made vocabulary (no shapes needed)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One home for the tiny models the composed configs build (conf/model/tiny_llava.yaml reads VLMALIGN_MODEL_CACHE):
# the default one pre-trains its vision tower (a minute), so the tests build it once per session, not once per
# test cache; child processes (multirun, DeepSpeed workers) inherit it.
if "VLMALIGN_MODEL_CACHE" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["VLMALIGN_MODEL_CACHE"] = tempfile.mkdtemp(prefix="vlmalign-test-models-")
    atexit.register(shutil.rmtree, os.environ["VLMALIGN_MODEL_CACHE"], ignore_errors=True)

WORDS = "a red green blue circle square at the top left right center . ? is there yes no describe image".split()


@pytest.fixture(scope="session")
def tiny_parts():
    """(model, processor) of a very small LLaVA; 32x32 images, patch 8 -> 16 image tokens."""
    from vlmalign.models.tiny_llava import TinyLlavaSpec, build_tiny_llava
    from vlmalign.models.tokenizer import train_word_tokenizer

    tokenizer = train_word_tokenizer([" ".join(WORDS)], extra_words=[*WORDS, "user", "assistant", ":"])
    spec = TinyLlavaSpec(image_size=32, patch_size=8, vision_hidden=32, vision_layers=1, vision_heads=2,
                         text_hidden=32, text_layers=2, text_heads=2, max_positions=128)
    return build_tiny_llava(spec, tokenizer, seed=0)


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_parts, tmp_path_factory):
    """The fixture model saved in HF format, as a hub checkpoint would be on disk."""
    model, processor = tiny_parts
    path = tmp_path_factory.mktemp("tiny_llava")
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def other_tokenizer_checkpoint(tmp_path_factory):
    """A tiny LLaVA like ``tiny_parts`` but with another (smaller) vocabulary, saved in HF format: a model that reads
    the fixture model's token ids as other text."""
    from vlmalign.models.tiny_llava import TinyLlavaSpec, build_tiny_llava
    from vlmalign.models.tokenizer import train_word_tokenizer

    tokenizer = train_word_tokenizer(["a red circle"], extra_words=["a", "red", "circle", "user", "assistant", ":"])
    spec = TinyLlavaSpec(image_size=32, patch_size=8, vision_hidden=32, vision_layers=1, vision_heads=2,
                         text_hidden=32, text_layers=2, text_heads=2, max_positions=128)
    model, processor = build_tiny_llava(spec, tokenizer, seed=0)
    path = tmp_path_factory.mktemp("other_tokenizer")
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
