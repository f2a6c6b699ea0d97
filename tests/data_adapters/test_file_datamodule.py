"""What every file dataset shares: splits, fingerprint, file errors, loaders."""

from __future__ import annotations

import pytest

from tests.data_adapters.schemas import rlaif_v_row, write_rlaif_v
from vlmalign.data.adapters.rlaif_v import RlaifVAdapter
from vlmalign.errors import ConfigError, DataError


def _shards(tmp_path, count=2, rows=5):
    return [write_rlaif_v(tmp_path / f"RLAIF-V-Dataset_{s:03d}.parquet",
                          [rlaif_v_row(s * rows + i) for i in range(rows)]) for s in range(count)]


def test_a_glob_of_shards_and_a_seeded_held_out_split(make_datamodule, tmp_path):
    _shards(tmp_path)
    pattern = str(tmp_path / "RLAIF-V-Dataset_*.parquet")
    first = make_datamodule(RlaifVAdapter(), pattern, val_fraction=0.2)
    again = make_datamodule(RlaifVAdapter(), pattern, val_fraction=0.2)
    other = make_datamodule(RlaifVAdapter(), pattern, val_fraction=0.2, split_seed=1)
    ids = {name: [r.sample_id for r in dm.val_set.refs] for name, dm in (("first", first), ("again", again),
                                                                       ("other", other))}
    assert len(ids["first"]) == 2 and ids["first"] == ids["again"] and ids["first"] != ids["other"]
    assert not set(ids["first"]) & {r.sample_id for r in first.train_set.refs}
    assert len(first.train_set) == 8 and len(first.identity()["train_files"]) == 2


def test_the_description_fingerprints_file_content_adapter_and_knobs(make_datamodule, tmp_path):
    path, = _shards(tmp_path, count=1)
    before = make_datamodule(RlaifVAdapter(), path).identity()
    assert before == make_datamodule(RlaifVAdapter(), path).identity()
    assert before != make_datamodule(RlaifVAdapter(), path, split_seed=3).identity()
    write_rlaif_v(path, [rlaif_v_row(i, chosen=f"another answer {i}") for i in range(5)])
    after = make_datamodule(RlaifVAdapter(), path).identity()
    assert after["train_files"][0]["sha256"] != before["train_files"][0]["sha256"]


def test_loaders_collate_batches_and_encode_once_keeps_them(make_datamodule, tmp_path):
    path, = _shards(tmp_path, count=1, rows=6)
    datamodule = make_datamodule(RlaifVAdapter(), path, views=("chosen", "rejected"))
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["pixel_values"].shape == (2, 3, 32, 32) and set(batch["views"]) == {"chosen", "rejected"}
    datamodule.encode_once()
    assert datamodule.train_set[0] is datamodule.train_set[0]
    assert next(iter(datamodule.val_dataloader()))["sample_ids"]


def test_file_problems_are_clear(make_datamodule, tmp_path):
    with pytest.raises(ConfigError, match=r"data.train_file='.*nothing-\*.parquet': no such file \(the glob"):
        make_datamodule(RlaifVAdapter(), tmp_path / "nothing-*.parquet")
    (tmp_path / "pairs.txt").write_text("{}")
    with pytest.raises(ConfigError, match="cannot tell the format of .*pairs.txt"):
        make_datamodule(RlaifVAdapter(), tmp_path / "pairs.txt")
    (tmp_path / "broken.json").write_text('[{"question": "a", ')
    with pytest.raises(DataError, match=r"broken.json: cannot be read"):
        make_datamodule(RlaifVAdapter(), tmp_path / "broken.json")
    with pytest.raises(ConfigError, match="data.on_error='ignore'"):
        make_datamodule(RlaifVAdapter(), _shards(tmp_path, 1)[0], on_error="ignore")


def test_a_split_left_empty_by_skipping_is_an_error(make_datamodule, tmp_path):
    path = write_rlaif_v(tmp_path / "bad.parquet", [rlaif_v_row(i, chosen="") for i in range(3)])
    with pytest.raises(DataError, match=r"the train split has no usable examples \(3 rows skipped"):
        make_datamodule(RlaifVAdapter(), path, on_error="skip")


def test_group_by_length_batches_file_pairs_by_their_text_length(make_datamodule, tmp_path):
    rows = [rlaif_v_row(i, chosen="a red square " * (1 + i % 4), rejected="a circle " * (1 + i % 3)) for i in range(9)]
    path = write_rlaif_v(tmp_path / "pairs.parquet", rows)
    datamodule = make_datamodule(RlaifVAdapter(), path, val_fraction=0.2, group_by_length=True)
    train = datamodule.train_set
    text = [train.text_length(i) for i in range(len(train))]  # read from the rows, no image opened
    encoded = [len(train[i].prompt_ids) + sum(map(len, train[i].responses.values())) for i in range(len(train))]
    assert len(set(text)) > 2 and len({e - t for e, t in zip(encoded, text)}) == 1  # image span + template: fixed
    batches = [batch["sample_ids"] for batch in datamodule.train_dataloader()]
    assert sorted(i for batch in batches for i in batch) == sorted(ref.sample_id for ref in train.refs)
