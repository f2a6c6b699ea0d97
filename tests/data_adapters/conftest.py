"""Fixtures of the adapter tests: the tiny processor (tests/conftest.py) and a FileDataModule builder."""

from __future__ import annotations

import pytest

from vlmalign.data.file_datamodule import FileDataModule


@pytest.fixture(scope="session")
def processor(tiny_parts):
    return tiny_parts[1]


@pytest.fixture
def make_datamodule(processor, tmp_path):
    def make(adapter, train_file, views=("chosen", "rejected"), **knobs):
        settings = dict(task=adapter.task, val_fraction=0.34, max_length=96, batch_size=2,
                        cache_dir=str(tmp_path / "hf_cache"))
        return FileDataModule(processor, adapter, str(train_file), views=views, **{**settings, **knobs})

    return make
