"""A tiny untrained shapes policy shared by the pipeline tests (built once per session)."""

from __future__ import annotations

import pytest

from vlmalign.models.loader import ensure_tiny_llava_checkpoint
from vlmalign.models.tiny_llava import TinyLlavaSpec

SMALL = TinyLlavaSpec(image_size=32, patch_size=8, vision_hidden=32, vision_layers=1, vision_heads=2,
                      text_hidden=32, text_layers=1, text_heads=2, max_positions=128)


@pytest.fixture(scope="session")
def policy(tmp_path_factory):
    return ensure_tiny_llava_checkpoint(tmp_path_factory.mktemp("models"), SMALL, seed=0)
