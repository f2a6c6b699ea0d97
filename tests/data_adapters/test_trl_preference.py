"""TRL's vision preference format: images list, prompt/chosen/rejected as strings or messages."""

from __future__ import annotations

import pytest

from tests.data_adapters.schemas import png_bytes, save_image, trl_row, write_jsonl, write_trl
from vlmalign.data.adapters.trl_preference import TrlPreferenceAdapter
from vlmalign.data.adapters.validation import RowError
from vlmalign.errors import DataError


def test_conversational_rows_from_parquet(make_datamodule, processor, tmp_path):
    path = write_trl(tmp_path / "train-00000-of-00001.parquet", [trl_row(i) for i in range(3)])
    datamodule = make_datamodule(TrlPreferenceAdapter(), path)
    example = datamodule.train_set[0]
    assert set(example.responses) == {"chosen", "rejected"}
    assert example.prompt_ids.count(processor.tokenizer.convert_tokens_to_ids("<image>")) == 16
    record, = TrlPreferenceAdapter().records(trl_row(4))
    assert (record.prompt, record.responses) == ("What colour is image 4?", {"chosen": "purple", "rejected": "red"})


def test_string_rows_with_image_paths_from_json_lines(make_datamodule, tmp_path):
    save_image(tmp_path / "a.png", "green")
    rows = [{"images": ["a.png"], "prompt": "<image>What colour?", "chosen": "green", "rejected": f"red {i}"}
            for i in range(3)]
    datamodule = make_datamodule(TrlPreferenceAdapter(), write_jsonl(tmp_path / "pairs.jsonl", rows))
    assert len(datamodule.train_set) + len(datamodule.val_set) == 3


def test_unsupported_shapes_are_clear_row_errors():
    two_turns = trl_row(0)
    two_turns["prompt"] = [{"role": "system", "content": "be nice"}, *two_turns["prompt"]]
    with pytest.raises(RowError, match="field 'prompt' must be a string or a list of one 'user' message, got 2"):
        TrlPreferenceAdapter().records(two_turns)
    with pytest.raises(RowError, match="one image per row"):
        TrlPreferenceAdapter().records(trl_row(0, images=[{"bytes": png_bytes(), "path": None}] * 2))


def test_bad_rows(make_datamodule, tmp_path):
    rows = [trl_row(0), trl_row(1, images=[]), trl_row(2, images=[{"bytes": b"GIF89a-broken", "path": None}]),
            trl_row(3, chosen=""), trl_row(4, chosen="same", rejected="same"), trl_row(5), trl_row(6)]
    rows[5]["chosen"] = None
    path = write_trl(tmp_path / "bad.parquet", rows)
    with pytest.raises(DataError, match=r"bad.parquet: row 1: field 'images' is missing or empty"):
        make_datamodule(TrlPreferenceAdapter(), path)
    datamodule = make_datamodule(TrlPreferenceAdapter(), path, on_error="skip")
    assert datamodule.identity()["skipped"]["by_reason"] == {
        "empty_response": 1, "identical_responses": 1, "missing_field": 1, "missing_image": 1, "unreadable_image": 1}
    assert len(datamodule.train_set) + len(datamodule.val_set) == 2
