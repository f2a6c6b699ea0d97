"""Resumable JSON-lines output: what counts as a crash's truncated tail, and what is never touched."""

import json

import pytest

from vlmalign.errors import DataError
from vlmalign.io.jsonl import JsonlAppender, finished_ids, iter_jsonl, repair_truncated_tail
from vlmalign.negatives.cli import main


def test_appender_writes_whole_lines_and_creates_no_file_when_idle(tmp_path):
    with JsonlAppender(tmp_path / "idle.jsonl"):
        pass
    assert not (tmp_path / "idle.jsonl").exists()
    with JsonlAppender(tmp_path / "sub" / "out.jsonl") as out:
        out.write({"id": "a", "text": "é"})
        out.write({"id": "b"})
    assert [row for _, row in iter_jsonl(tmp_path / "sub" / "out.jsonl")] == [{"id": "a", "text": "é"}, {"id": "b"}]


@pytest.mark.parametrize(("tail", "cut"), [
    (b'{"id": "c", "te', True),  # cut mid-record
    ('{"id": "c", "text": "\u00e9'.encode()[:-1], True),  # cut inside a multi-byte character
    (b'{"id": "c"}', False),  # complete, only the newline lost: kept and terminated
    (b"", False),
])
def test_repair_cuts_only_an_unfinished_last_record(tmp_path, tail, cut):
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b"}\n' + tail)
    assert finished_ids(path) == ({"a", "b"} if cut or not tail else {"a", "b", "c"})
    assert (repair_truncated_tail(path) is not None) == cut
    expected = b'{"id": "a"}\n{"id": "b"}\n' + (b"" if cut or not tail else tail + b"\n")
    assert path.read_bytes() == expected


def test_a_bad_line_is_named_with_its_number(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"id": 1}\n\n\xff\xfe\n')
    with pytest.raises(DataError, match=r"in.jsonl:3: not valid JSON \(not UTF-8 text\)"):
        list(iter_jsonl(path))
    with pytest.raises(DataError, match="cannot read .*missing.jsonl"):
        list(iter_jsonl(tmp_path / "missing.jsonl"))


def test_a_wrong_output_file_is_reported_and_never_edited(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\nno trailing newline")
    assert main(["--shapes-split", "train", "--num-scenes", "2", "-o", str(notes)]) == 2
    assert f"{notes}:1: not valid JSON" in capsys.readouterr().err
    assert notes.read_text() == "my notes\nno trailing newline"

    pairs = tmp_path / "pairs.jsonl"
    row = {"id": 1, "image": "a.png", "prompt": "p", "chosen": "c", "rejected": "r"}
    pairs.write_text(json.dumps(row) + "\n")
    assert main(["--input", str(pairs), "-o", str(pairs)]) == 2
    assert "is the input file" in capsys.readouterr().err
