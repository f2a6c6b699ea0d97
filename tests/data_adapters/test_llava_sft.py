"""LLaVA conversation JSON for SFT: one-turn and multi-turn conversations."""

from __future__ import annotations

import pytest

from tests.data_adapters.schemas import llava_row, save_image, write_json
from vlmalign.data.adapters.llava import LlavaSftAdapter
from vlmalign.errors import DataError
from vlmalign.models.logprobs import IGNORE_INDEX


def _fixture(tmp_path, rows):
    for row in rows:
        if isinstance(row.get("image"), str):
            save_image(tmp_path / "coco_root" / row["image"], "blue", "JPEG")
    return write_json(tmp_path / "llava_instruct.json", rows)


def test_one_turn_and_multi_turn_conversations(make_datamodule, processor, tmp_path):
    path = _fixture(tmp_path, [llava_row(0), llava_row(1, turns=3), llava_row(2)])
    datamodule = make_datamodule(LlavaSftAdapter(), path, views=("chosen",), val_file=str(path),
                                 image_root=str(tmp_path / "coco_root"))
    one, multi = datamodule.train_set[0], datamodule.train_set[1]
    assert one.responses["chosen"] and one.prompt_ids.count(processor.tokenizer.convert_tokens_to_ids("<image>")) == 16
    assert "chosen" in multi.dialogues and multi.dialogues["chosen"].num_turns == 3
    ids, labels = multi.tokens("chosen")
    assert sum(label != IGNORE_INDEX for label in labels) == 6  # three one-word answers, each with its EOS
    batch = datamodule.collator([one, multi])
    assert batch["views"]["chosen"]["input_ids"].shape[0] == 2
    assert datamodule.train_set.text_length(1) > datamodule.train_set.text_length(0)  # group_by_length sees the turns


def test_preference_objectives_are_refused_on_sft_data(make_datamodule, tmp_path):
    from vlmalign.errors import ConfigError

    with pytest.raises(ConfigError, match=r"needs views \['rejected'\] but data=llava_sft is sft data"):
        make_datamodule(LlavaSftAdapter(), _fixture(tmp_path, [llava_row(0)]), views=("chosen", "rejected"))


def test_bad_rows(make_datamodule, tmp_path):
    text_only = llava_row(1)
    del text_only["image"]
    rows = [llava_row(0), text_only, llava_row(2), llava_row(3), llava_row(4), llava_row(5), llava_row(6)]
    rows[2]["conversations"][1]["value"] = " "
    rows[3]["conversations"] = rows[3]["conversations"][:1]
    del rows[4]["conversations"]
    rows[5]["conversations"][0]["from"] = "gpt"
    path = _fixture(tmp_path, rows)
    (tmp_path / "coco_root" / rows[6]["image"]).write_bytes(b"")
    root = str(tmp_path / "coco_root")
    with pytest.raises(DataError, match=r"llava_instruct.json: row 1 \(id 000000000001\): the row has no image"):
        make_datamodule(LlavaSftAdapter(), path, views=("chosen",), image_root=root)
    datamodule = make_datamodule(LlavaSftAdapter(), path, views=("chosen",), image_root=root, on_error="skip",
                                 val_file=str(path))
    assert datamodule.identity()["skipped"]["by_reason"] == {
        "bad_value": 4, "empty_response": 2, "missing_field": 2, "missing_image": 2, "unreadable_image": 2}
    assert len(datamodule.train_set) == 1
