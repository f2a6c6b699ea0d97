"""mDPO's JSON: img_path, a Bunny-wrapped prompt with <image>, chosen, rejected."""

from __future__ import annotations

import pytest

from tests.data_adapters.schemas import mdpo_row, save_image, write_json
from vlmalign.data.adapters.mdpo_json import MdpoJsonAdapter
from vlmalign.errors import DataError


def _fixture(tmp_path, rows, images=None):
    for index in images if images is not None else range(len(rows)):
        save_image(tmp_path / "images" / f"llava-reasoning-{index}.jpg", "red", "JPEG")
    return write_json(tmp_path / "mdpo_data.json", rows)


def test_the_prompt_loses_its_chat_wrapper_and_image_placeholder():
    record, = MdpoJsonAdapter().records(mdpo_row(3))
    assert record.prompt == "What is the colour of shape 3?"
    assert MdpoJsonAdapter().records(mdpo_row(3, prompt="<image>\nDescribe it."))[0].prompt == "Describe it."


@pytest.mark.parametrize("streaming", [False, True])
def test_json_array_with_relative_image_paths(make_datamodule, processor, tmp_path, streaming):
    path = _fixture(tmp_path, [mdpo_row(i) for i in range(3)])
    datamodule = make_datamodule(MdpoJsonAdapter(), path, streaming=streaming)
    assert (len(datamodule.train_set), len(datamodule.val_set)) == (2, 1)
    example = datamodule.train_set[0]
    text = processor.tokenizer.decode(example.prompt_ids)
    assert "USER:" not in text and "chat between" not in text
    assert example.prompt_ids.count(processor.tokenizer.convert_tokens_to_ids("<image>")) == 16


def test_bad_rows(make_datamodule, tmp_path):
    rows = [mdpo_row(0), mdpo_row(1, img_path="images/gone.jpg"), mdpo_row(2, chosen=""),
            mdpo_row(3, rejected="it is red"), mdpo_row(4), mdpo_row(5, prompt="USER: <image> <image> two? ASSISTANT:"),
            mdpo_row(6)]
    del rows[4]["rejected"]
    path = _fixture(tmp_path, rows, images=[0, 2, 3, 4, 5, 6])
    (tmp_path / "images" / "llava-reasoning-6.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    with pytest.raises(DataError, match=r"mdpo_data.json: row 1: image file .*images/gone.jpg does not exist"):
        make_datamodule(MdpoJsonAdapter(), path)
    datamodule = make_datamodule(MdpoJsonAdapter(), path, on_error="skip", val_file=str(path))
    assert datamodule.identity()["skipped"] == {"skipped": 12, "by_reason": {  # each bad row twice: train and val
        "bad_value": 2, "empty_response": 2, "identical_responses": 2, "missing_field": 2, "missing_image": 2,
        "unreadable_image": 2}}
    assert any("row 6: image file" in m and "llava-reasoning-6.jpg cannot be read as an image" in m
               for m in datamodule.skipped_rows)
    assert len(datamodule.train_set) == len(datamodule.val_set) == 1  # val_file: the same file read as validation
    assert datamodule.val_set[0].sample_id == "val/mdpo_data.json:0" != datamodule.train_set[0].sample_id
