"""Unpaired (KTO) files: KTO's own (prompt, completion, label) rows from JSON lines or parquet, TRL's unpaired
vision format, and the bad inputs (missing label column, one class only)."""

from __future__ import annotations

import datasets
import pytest

from tests.data_adapters.schemas import png_bytes, save_image, trl_row, write_jsonl, write_trl_unpaired
from vlmalign.data.adapters.unpaired import LocalUnpairedAdapter, TrlUnpairedAdapter
from vlmalign.data.unpaired import UNPAIRED_VIEWS
from vlmalign.errors import DataError


def _rows(labels, **changes):
    return [{"id": i, "prompt": f"describe {i}", "completion": f"a red square {i}", "label": label, "image": "a.png",
             **changes} for i, label in enumerate(labels)]


def test_jsonl_rows_become_labelled_examples_with_the_next_rows_completion_as_mismatched(make_datamodule, tmp_path):
    save_image(tmp_path / "a.png")
    labels = [True, False, True, False, False, True]
    datamodule = make_datamodule(LocalUnpairedAdapter(), write_jsonl(tmp_path / "kto.jsonl", _rows(labels)),
                                 views=UNPAIRED_VIEWS, val_fraction=0.2)
    examples = datamodule.train_set
    assert len(examples) + len(datamodule.val_set) == 6
    for index in range(len(examples)):
        example = examples[index]
        label = "desirable" if example.meta["desirable"] else "undesirable"
        other = "undesirable" if label == "desirable" else "desirable"
        assert set(example.responses) == {label, "mismatched"} and set(example.dialogues) == {other}
        assert example.responses["mismatched"] == examples[(index + 1) % len(examples)].responses[
            "desirable" if examples[(index + 1) % len(examples)].meta["desirable"] else "undesirable"]
    batch = datamodule.collator([examples[i] for i in range(len(examples))])
    labelled = {view: (batch["views"][view]["labels"] != -100).any(1) for view in UNPAIRED_VIEWS}
    desirable = [examples[i].meta["desirable"] for i in range(len(examples))]
    assert labelled["desirable"].tolist() == desirable
    assert labelled["undesirable"].tolist() == [not d for d in desirable]
    assert labelled["mismatched"].all()


def test_missing_label_column_and_one_class_are_clear_errors(make_datamodule, tmp_path):
    save_image(tmp_path / "a.png")
    rows = _rows([True, False, True])
    del rows[1]["label"]
    with pytest.raises(DataError, match=r"row 1 \(id 1\): missing label field 'label' \(true: desirable"):
        make_datamodule(LocalUnpairedAdapter(), write_jsonl(tmp_path / "no_label.jsonl", rows), views=UNPAIRED_VIEWS)
    with pytest.raises(DataError, match="label field 'label' must be true or false, got 'yes'"):
        make_datamodule(LocalUnpairedAdapter(), write_jsonl(tmp_path / "text.jsonl", _rows(["true", "yes", "False"])),
                        views=UNPAIRED_VIEWS)
    with pytest.raises(DataError, match="data.train_file .*: all 4 examples are desirable; unpaired .* needs both"):
        make_datamodule(LocalUnpairedAdapter(), write_jsonl(tmp_path / "one.jsonl", _rows([True] * 5)),
                        views=UNPAIRED_VIEWS, val_fraction=0.2)


def test_parquet_with_renamed_fields_and_integer_labels(make_datamodule, tmp_path):
    rows = {"question": [f"q {i}" for i in range(4)], "answer": [f"answer {i}" for i in range(4)],
            "good": [1, 0, 0, 1], "picture": [png_bytes("red")] * 4}
    path = tmp_path / "kto.parquet"
    datasets.Dataset.from_dict(rows).to_parquet(str(path))
    adapter = LocalUnpairedAdapter(prompt_field="question", completion_field="answer", label_field="good",
                                   image_field="picture", id_field=None)
    datamodule = make_datamodule(adapter, path, views=UNPAIRED_VIEWS, val_fraction=0.25)
    assert sorted(datamodule.train_set.labels() + datamodule.val_set.labels()) == [False, False, True, True]


def test_trl_unpaired_vision_rows(make_datamodule, tmp_path):
    path = write_trl_unpaired(tmp_path / "trl_kto.parquet", [trl_row(i) for i in range(4)])
    datamodule = make_datamodule(TrlUnpairedAdapter(), path, views=UNPAIRED_VIEWS, val_fraction=0.25)
    assert sorted(datamodule.train_set.labels() + datamodule.val_set.labels()) == [False, False, True, True]
    example = datamodule.train_set[0]
    (label,) = set(example.responses) - {"mismatched"}
    assert label in ("desirable", "undesirable") and example.prompt_ids
    row = {**trl_row(0), "completion": trl_row(0)["chosen"]}
    with pytest.raises(DataError, match="missing label field 'label'"):
        TrlUnpairedAdapter().records(row)
    assert TrlUnpairedAdapter().records({**row, "label": False})[0].responses == {"undesirable": "red"}
