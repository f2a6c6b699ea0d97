"""RLAIF-V-Dataset: parquet with inline image bytes, one pair per row."""

from __future__ import annotations

import pytest

from tests.data_adapters.schemas import png_bytes, rlaif_v_row, save_image, write_rlaif_v
from vlmalign.data.adapters.rlaif_v import RlaifVAdapter
from vlmalign.errors import DataError


@pytest.mark.parametrize("streaming", [False, True])
def test_rows_in_the_public_schema_become_pairs(make_datamodule, processor, tmp_path, streaming):
    path = write_rlaif_v(tmp_path / "RLAIF-V-Dataset_000.parquet", [rlaif_v_row(i) for i in range(6)])
    datamodule = make_datamodule(RlaifVAdapter(), path, streaming=streaming)
    assert len(datamodule.train_set) + len(datamodule.val_set) == 6 and len(datamodule.val_set) == 2
    example = datamodule.train_set[0]
    assert set(example.responses) == {"chosen", "rejected"}
    assert example.pixel_values.shape == (3, 32, 32)  # the 20x16 PNG resized by the model's processor
    image_token = processor.tokenizer.convert_tokens_to_ids("<image>")
    assert example.prompt_ids.count(image_token) == 16  # one image: the placeholders of exactly one
    assert example.sample_id.startswith("train/RLAIF-V-Dataset_000.parquet:")
    assert example.meta["idx"].startswith("OK-VQA_")
    described = datamodule.identity()
    assert described["source"] == "rlaif_v" and described["train"] == 4 and described["skipped"]["skipped"] == 0


def test_a_row_without_bytes_uses_image_path_under_the_image_root(make_datamodule, tmp_path):
    save_image(tmp_path / "images" / "OK-VQA" / "1.jpg", "blue", "JPEG")
    rows = [rlaif_v_row(0), rlaif_v_row(1, image=None), rlaif_v_row(2)]
    path = write_rlaif_v(tmp_path / "data.parquet", rows)
    datamodule = make_datamodule(RlaifVAdapter(), path, image_root=str(tmp_path / "images"))
    assert len(datamodule.train_set) + len(datamodule.val_set) == 3


BAD_ROWS = {
    1: (dict(image={"bytes": b"not an image at all", "path": None}), "unreadable_image", "cannot be read as an image"),
    2: (dict(image=None, image_path=None), "missing_image", "has no image"),
    3: (dict(question=None), "missing_field", "missing field 'question'"),
    4: (dict(rejected="  "), "empty_response", "response 'rejected' is empty"),
    5: (dict(rejected="a red square"), "identical_responses", "chosen and rejected are identical"),
}


def _bad_file(tmp_path):
    rows = [rlaif_v_row(i, **BAD_ROWS[i][0]) if i in BAD_ROWS else rlaif_v_row(i) for i in range(8)]
    rows[5]["chosen"] = "a red square"
    return write_rlaif_v(tmp_path / "bad.parquet", rows)


@pytest.mark.parametrize("row", sorted(BAD_ROWS))
def test_a_bad_row_stops_the_run_naming_file_row_and_problem(make_datamodule, tmp_path, row):
    rows = [rlaif_v_row(i) for i in range(3)]
    rows.insert(row % 3, rlaif_v_row(row, **BAD_ROWS[row][0]))
    if row == 5:
        rows[row % 3]["chosen"] = "a red square"
    path = write_rlaif_v(tmp_path / "bad.parquet", rows)
    with pytest.raises(DataError) as caught:
        make_datamodule(RlaifVAdapter(), path)
    message = str(caught.value)
    assert str(path) in message and f"row {row % 3} (id OK-VQA_{row})" in message and BAD_ROWS[row][2] in message


def test_skip_drops_bad_rows_and_counts_each_by_reason(make_datamodule, tmp_path):
    datamodule = make_datamodule(RlaifVAdapter(), _bad_file(tmp_path), on_error="skip")
    assert len(datamodule.train_set) + len(datamodule.val_set) == 3  # rows 0, 6, 7
    skipped = datamodule.identity()["skipped"]
    assert skipped == {"skipped": 5, "by_reason": {"empty_response": 1, "identical_responses": 1, "missing_field": 1,
                                                   "missing_image": 1, "unreadable_image": 1}}
    assert [m.split(": ")[1] for m in datamodule.skipped_rows] == [f"row {i} (id OK-VQA_{i})" for i in range(1, 6)]


def test_the_adapter_needs_no_model():
    record, = RlaifVAdapter().records(rlaif_v_row(0, question="<image>\nWhat is this?"))
    assert record.prompt == "What is this?" and record.image["bytes"] == png_bytes("red")
