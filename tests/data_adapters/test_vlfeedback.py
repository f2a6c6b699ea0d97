"""VLFeedback as Silkie pairs: every completion pair ranked by mean rating, ties dropped."""

from __future__ import annotations

import pytest

from tests.data_adapters.schemas import save_image, vlfeedback_completion, vlfeedback_row, write_jsonl
from vlmalign.data.adapters.vlfeedback import VLFeedbackAdapter
from vlmalign.errors import DataError


def _row(row_id: str) -> dict:
    return vlfeedback_row(row_id, [
        vlfeedback_completion("gpt-4v", "a red square at the top", (5, 5, 5)),       # mean 5
        vlfeedback_completion("llava-v1.5-7b", "a blue circle", (3, 2, 4)),            # mean 3
        vlfeedback_completion("qwen-vl-chat", "a green triangle", (4, 1, 4)),          # mean 3: ties the one above
        vlfeedback_completion("fuyu-8b", "nothing", ("N/A", "N/A", "N/A")),           # unrated: never paired
    ])


def _fixture(tmp_path, rows):
    for row in rows:
        save_image(tmp_path / "merged_images" / f"{row['id']}.jpg", "red", "JPEG")
    return write_jsonl(tmp_path / "vlfeedback_80k.jsonl", rows)


def test_pairs_are_ranked_by_mean_rating_and_ties_dropped():
    records, stats = VLFeedbackAdapter().scan(_row("svit-1"))
    assert [(r.key, r.responses["chosen"], r.responses["rejected"]) for r in records] == [
        ("0>1", "a red square at the top", "a blue circle"), ("0>2", "a red square at the top", "a green triangle")]
    assert stats == {"tied_pairs": 1, "unrated_completions": 1, "rows_without_pairs": 0}
    assert records[0].image == "svit-1.jpg" and records[0].meta["scores"] == (5.0, 3.0)


def test_aspects_and_margin_are_knobs():
    records, stats = VLFeedbackAdapter(aspects=["Visual Faithfulness"], min_margin=1.0).scan(_row("x"))
    assert [r.key for r in records] == ["0>1", "0>2"] and stats["tied_pairs"] == 1  # 5 vs 2 and 1; 2 vs 1 is a tie


def test_jsonl_with_image_folder_gives_every_pair(make_datamodule, tmp_path):
    path = _fixture(tmp_path, [_row(f"svit-{i}") for i in range(3)])
    datamodule = make_datamodule(VLFeedbackAdapter(), path, image_root=str(tmp_path / "merged_images"))
    assert len(datamodule.train_set) + len(datamodule.val_set) == 6
    assert len(datamodule.val_set) == 2  # one held-out row: both of its pairs, never split across train and val
    assert len({ref.row for ref in datamodule.val_set.refs}) == 1
    assert datamodule.train_set[0].sample_id.endswith(":0>1")
    assert datamodule.identity()["dropped"] == {"rows_without_pairs": 0, "tied_pairs": 3, "unrated_completions": 3}


def test_bad_pairs_and_rows(make_datamodule, tmp_path):
    empty = _row("svit-1")
    empty["completions"][1]["response"] = ""  # only the pair that uses it is bad
    same = _row("svit-2")
    same["completions"][2]["response"] = same["completions"][0]["response"]
    no_prompt = _row("svit-3")
    del no_prompt["prompt"]
    no_image = _row("svit-4")
    rows = [_row("svit-0"), empty, same, no_prompt, no_image]
    path = _fixture(tmp_path, rows[:4])
    path = write_jsonl(path, rows)  # svit-4 has no image file
    with pytest.raises(DataError, match=r"vlfeedback_80k.jsonl: row 1 \(id svit-1\) pair 0>1: response 'rejected' "
                                        r"is empty"):
        make_datamodule(VLFeedbackAdapter(), path, image_root=str(tmp_path / "merged_images"))
    datamodule = make_datamodule(VLFeedbackAdapter(), path, image_root=str(tmp_path / "merged_images"),
                                 on_error="skip")
    assert datamodule.identity()["skipped"]["by_reason"] == {"empty_response": 1, "identical_responses": 1,
                                                             "missing_field": 1, "missing_image": 1}
    assert len(datamodule.train_set) + len(datamodule.val_set) == 2 + 1 + 1
    assert any("row 4 (id svit-4)" in m and "svit-4.jpg does not exist" in m for m in datamodule.skipped_rows)
    assert any("row 3 (id svit-3)" in m and "missing field 'prompt'" in m for m in datamodule.skipped_rows)
