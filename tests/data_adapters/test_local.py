"""Generic local files: JSON lines with image paths, parquet with image bytes, configurable field names."""

from __future__ import annotations

import datasets
import pytest

from tests.data_adapters.schemas import png_bytes, save_image, write_jsonl
from vlmalign.data.adapters.local import LocalAdapter
from vlmalign.errors import ConfigError, DataError


def test_jsonl_with_paths(make_datamodule, tmp_path):
    save_image(tmp_path / "img" / "a.png")
    rows = [{"id": i, "prompt": f"describe {i}", "chosen": "a red square", "rejected": f"a blue circle {i}",
             "image": "img/a.png"} for i in range(3)]
    datamodule = make_datamodule(LocalAdapter(), write_jsonl(tmp_path / "pairs.jsonl", rows))
    assert len(datamodule.train_set) + len(datamodule.val_set) == 3


def test_parquet_with_bytes_and_custom_field_names_for_sft(make_datamodule, tmp_path):
    rows = {"question": ["what is it ?", "and now ?", "colour ?"], "answer": ["a square", "a circle", "red"],
            "picture": [png_bytes("red"), png_bytes("blue"), png_bytes("green")], "uid": ["a", "b", "c"]}
    path = tmp_path / "sft.parquet"
    datasets.Dataset.from_dict(rows).to_parquet(str(path))
    adapter = LocalAdapter(task="sft", prompt_field="question", response_field="answer", image_field="picture",
                           id_field="uid")
    datamodule = make_datamodule(adapter, path, views=("chosen",))
    assert set(datamodule.train_set[0].responses) == {"chosen"}
    assert datamodule.identity()["adapter"]["fields"]["response"] == "answer"


def test_bad_rows(make_datamodule, tmp_path):
    save_image(tmp_path / "a.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    good = {"prompt": "describe", "chosen": "a red square", "rejected": "a blue circle", "image": "a.png"}
    rows = [{**good, "id": "ok-0"}, {**good, "id": "no-image", "image": None}, {**good, "id": "broken",
            "image": "broken.png"}, {**good, "id": "no-prompt", "prompt": None}, {**good, "id": "empty", "chosen": ""},
            {**good, "id": "same", "rejected": "a red square"}, {**good, "id": "ok-6"}]
    path = write_jsonl(tmp_path / "pairs.jsonl", rows)
    with pytest.raises(DataError, match=r"pairs.jsonl: row 1 \(id no-image\): the row has no image"):
        make_datamodule(LocalAdapter(), path)
    datamodule = make_datamodule(LocalAdapter(), path, on_error="skip")
    assert datamodule.identity()["skipped"] == {"skipped": 5, "by_reason": {
        "empty_response": 1, "identical_responses": 1, "missing_field": 1, "missing_image": 1,
        "unreadable_image": 1}}


def test_unknown_task_is_a_config_error():
    with pytest.raises(ConfigError, match="data.adapter.task='dpo'"):
        LocalAdapter(task="dpo")


def test_an_empty_split_says_what_to_fix(make_datamodule, tmp_path):
    """Every row skipped: better files, not a larger val_fraction (the old advice); a val_fraction that holds out
    every usable row: lower it."""
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    good = {"prompt": "describe", "chosen": "a red square", "rejected": "a blue circle", "image": "broken.png"}
    path = write_jsonl(tmp_path / "pairs.jsonl", [{**good, "id": i} for i in range(3)])
    with pytest.raises(DataError, match=r"3 rows skipped .*unreadable_image.*fix the files") as caught:
        make_datamodule(LocalAdapter(), path, on_error="skip")
    assert "val_fraction" not in str(caught.value)
    save_image(tmp_path / "a.png")
    path = write_jsonl(tmp_path / "one.jsonl", [{**good, "id": 0, "image": "a.png"}])
    with pytest.raises(DataError, match="the train split has no usable examples; lower data.val_fraction"):
        make_datamodule(LocalAdapter(), path)
