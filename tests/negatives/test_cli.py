"""``vlmalign-build-negatives`` end to end: shapes split, resume and repair, clear input errors, LLM input."""

import json
import subprocess
import sys

import pytest

from vlmalign.data.shapes import Scene
from vlmalign.negatives.cli import main, shapes_data_defaults
from vlmalign.negatives.sources import shapes_preference_samples

# The error mix is explicit: the defaults come from conf/data/shapes_preference.yaml, which may change.
SHAPES = ["--shapes-split", "train", "--num-scenes", "12", "--world-seed", "3", "--error-mix", "shape=1,count=1",
          "--pair-kind", "injected"]


def lines(path):
    return path.read_text().splitlines(keepends=True)


@pytest.fixture
def built(tmp_path, capsys):
    """A finished shapes build: (output path, its lines)."""
    out = tmp_path / "nsft.jsonl"
    assert main([*SHAPES, "-o", str(out)]) == 0
    capsys.readouterr()
    return out, lines(out)


def summary(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_shapes_split_end_to_end(built):
    out, rows = built
    records = [json.loads(r) for r in rows]
    world = {**shapes_data_defaults()["world"], "seed": 3}
    expected = shapes_preference_samples("train", 12, world, {"shape": 1.0, "count": 1.0}, 1.0, 1, "injected")
    assert [r["id"] for r in records] == [s.id for s in expected]  # the pairs training sees, in order
    for record, sample in zip(records, expected):
        assert set(record) == {"id", "scene", "prompt", "chosen", "rejected", "negative_turns"}
        assert Scene.from_dict(record["scene"]) == sample.scene
        assert (record["prompt"], record["chosen"], record["rejected"]) == (sample.prompt, sample.chosen,
                                                                            sample.rejected)
        assert record["negative_turns"] and all(set(t) == {"question", "answer", "error_type"}
                                                for t in record["negative_turns"])
    meta = json.loads((out.parent / "nsft.meta.json").read_text())
    assert meta["builder"]["builder"] == "shapes-rules" and meta["source"]["split"] == "train"
    assert not (out.parent / "nsft.rejected.jsonl").exists()


def test_resume_after_losing_the_last_lines_rebuilds_only_those(built, capsys):
    out, full = built
    out.write_text("".join(full[:7]))
    assert main([*SHAPES, "-o", str(out)]) == 0
    counts = summary(capsys)
    assert (counts["skipped"], counts["built"] + counts["empty"], counts["total"]) == (7, 5, 12)
    assert lines(out) == full
    assert main([*SHAPES, "-o", str(out)]) == 0  # nothing left to do
    assert summary(capsys)["skipped"] == 12 and lines(out) == full


def test_a_truncated_last_line_is_repaired_and_rebuilt(built, capsys):
    out, full = built
    out.write_text("".join(full[:7]) + full[7][: len(full[7]) // 2])
    assert main([*SHAPES, "-o", str(out)]) == 0
    assert "removed a truncated last line" in capsys.readouterr().err
    assert lines(out) == full
    out.write_text("".join(full[:7]) + full[7].rstrip("\n"))  # complete record, only the newline lost: kept
    assert main([*SHAPES, "-o", str(out)]) == 0
    assert summary(capsys)["skipped"] == 8 and lines(out) == full


def test_resuming_with_other_knobs_is_refused_and_the_output_kept(built, capsys):
    out, full = built
    assert main([*SHAPES, "--plausibility", "0", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "different source" in err and "new --output" in err
    assert lines(out) == full


def test_a_corrupt_line_inside_the_output_is_named_and_nothing_is_touched(built, capsys):
    out, full = built
    out.write_text("".join(full[:3]) + "{broken\n" + "".join(full[3:]))
    before = out.read_text()
    assert main([*SHAPES, "-o", str(out)]) == 2
    assert f"{out}:4: not valid JSON" in capsys.readouterr().err
    assert out.read_text() == before


def write_pairs(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


SCENE = {"image_id": "x", "objects": [{"shape": "circle", "color": "red", "size": "large", "position": "top left"}]}
GOOD_ROW = {"id": 1, "scene": SCENE, "prompt": "describe the image .", "chosen": "a large red circle at the top left .",
            "rejected": "a large blue circle at the top left ."}


@pytest.mark.parametrize(("bad_row", "message"), [
    ({k: v for k, v in GOOD_ROW.items() if k != "rejected"} | {"id": 3}, ":3: missing field(s) 'rejected'"),
    ('{"id": 3, "prompt": ', ":3: not valid JSON"),
    (GOOD_ROW | {"id": 3, "chosen": ["a", "list"]}, ":3: field 'chosen' must be a string"),
    ({k: v for k, v in GOOD_ROW.items() if k != "scene"} | {"id": 3}, ":3: needs field 'image' (a path) or 'scene'"),
    (GOOD_ROW | {"id": 3, "scene": {"image_id": "x", "objects": [{"shape": "cube"}]}}, ":3: field 'scene' is not"),
    (GOOD_ROW | {"id": 2}, ":3: duplicate id '2' (first on line 2)"),
    ([1, 2], ":3: expected one JSON object per line with fields id"),
])
def test_bad_input_names_file_line_and_field_and_keeps_the_output(tmp_path, capsys, bad_row, message):
    pairs = write_pairs(tmp_path / "pairs.jsonl", [GOOD_ROW, GOOD_ROW | {"id": 2}, bad_row])
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "earlier work"}\n')
    assert main(["--input", str(pairs), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{pairs}{message}" in err and "Traceback" not in err
    assert out.read_text() == '{"id": "earlier work"}\n'


def test_the_command_prints_a_clear_error_not_a_traceback(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", [GOOD_ROW, "not json"])
    result = subprocess.run([sys.executable, "-m", "vlmalign.negatives.cli", "--input", str(pairs), "-o",
                             str(tmp_path / "out.jsonl")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"{pairs}:2: not valid JSON" in result.stderr and "Traceback" not in result.stderr


def test_jsonl_with_scenes_uses_the_rules_and_image_only_rows_need_an_llm(tmp_path, capsys):
    pairs = write_pairs(tmp_path / "pairs.jsonl", [GOOD_ROW])
    out = tmp_path / "out.jsonl"
    assert main(["--input", str(pairs), "-o", str(out)]) == 0
    (record,) = [json.loads(r) for r in lines(out)]
    assert record["id"] == "1" and record["negative_turns"][-1] == {
        "question": "what color is the circle at the top left ?", "answer": "red", "error_type": "attribute"}
    image_only = write_pairs(tmp_path / "images.jsonl", [GOOD_ROW | {"scene": None, "image": "a.png"}])
    assert main(["--input", str(image_only), "-o", str(tmp_path / "o2.jsonl"), "--builder", "rules"]) == 2
    assert "images.jsonl:1 (id '1') has none" in capsys.readouterr().err
    assert main(["--input", str(image_only), "-o", str(tmp_path / "o2.jsonl")]) == 2
    assert "needs --backend" in capsys.readouterr().err


def test_llm_build_writes_rejections_aside_and_resumes_without_asking_again(tmp_path, capsys, chat_server):
    good = '[{"error_type": "existence", "question": "Is there a zebra?", "answer": "No."}]'
    chat_server.replies = {"zebra.": good, "giraffe.": "I cannot help with that."}
    rows = [{"id": f"r{i}", "image": f"img/{i}.jpg", "prompt": "Describe the image.", "chosen": "A sofa.",
             "rejected": f"A sofa, {i} lamps and a {'zebra' if i % 2 else 'giraffe'}."} for i in range(4)]
    pairs = write_pairs(tmp_path / "pairs.jsonl", rows)
    out = tmp_path / "nsft.jsonl"
    args = ["--input", str(pairs), "-o", str(out), "--backend", "openai", "--base-url", chat_server.base_url,
            "--model", "fake", "--retries", "0", "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 0
    counts = summary(capsys)
    assert (counts["built"], counts["rejected"], counts["rejected_reasons"]) == (2, 2, {"invalid_json": 2})
    written = [json.loads(r) for r in lines(out)]
    assert [r["id"] for r in written] == ["r1", "r3"] and written[0]["image"] == "img/1.jpg"
    assert written[0]["negative_turns"] == [{"question": "Is there a zebra?", "answer": "No.",
                                          "error_type": "existence"}]
    rejected = [json.loads(r) for r in lines(tmp_path / "nsft.rejected.jsonl")]
    assert [(r["id"], r["reason"], r["completion"]) for r in rejected] == [
        ("r0", "invalid_json", "I cannot help with that."), ("r2", "invalid_json", "I cannot help with that.")]
    assert chat_server.num_requests == 4

    out.write_text(lines(out)[0])  # lose r3: rebuilt from the cache, the rejections are not retried
    assert main(args) == 0
    counts = summary(capsys)
    assert (counts["skipped"], counts["built"], counts["cached"]) == (3, 1, 1)
    assert chat_server.num_requests == 4
