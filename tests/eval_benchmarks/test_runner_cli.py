"""The runner (resumable answers, settings pinned, images checked first) and ``vlmalign-eval`` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.eval_benchmarks.conftest import compose_evaluate, write_json, write_jsonl
from vlmalign.errors import ConfigError, DataError
from vlmalign.eval.benchmarks import runner
from vlmalign.eval.benchmarks.cli import evaluate, main, translate_flags
from vlmalign.eval.benchmarks.pope import PopeBenchmark
from vlmalign.models import VisionLanguageBackbone

COLORS = ("red", "green", "blue")
POPE_ROWS = [{"question_id": i + 1, "image": f"COCO_val2014_00000000000{i + 1}.png",
              "text": f"is there a {color} circle in the image ?", "label": label}
             for i, (color, label) in enumerate(zip(COLORS, ("yes", "no", "yes")))]


@pytest.fixture
def pope_files(tmp_path):
    """A 3-question POPE random split and its PNG images, in POPE's own layout."""
    images = tmp_path / "val2014"
    images.mkdir()
    for row, color in zip(POPE_ROWS, COLORS):
        Image.new("RGB", (32, 32), color).save(images / row["image"])
    write_jsonl(tmp_path / "pope" / "coco_pope_random.json", POPE_ROWS)
    return tmp_path / "pope", images


@pytest.fixture
def backbone(tiny_parts):
    model, processor = tiny_parts
    return VisionLanguageBackbone(model, processor, name="tiny")


def counting(monkeypatch):
    """Count the prompts generate_responses is asked (the runner must not ask an answered question again)."""
    asked = []
    real = runner.generate_responses

    def spy(backbone, images, prompts, max_new_tokens, batch_size=64):
        asked.extend(prompts)
        return real(backbone, images, prompts, max_new_tokens, batch_size)

    monkeypatch.setattr(runner, "generate_responses", spy)
    return asked


def test_answers_are_generated_once_and_resumed_after_a_crash(pope_files, backbone, tmp_path, monkeypatch):
    question_dir, images = pope_files
    bench = PopeBenchmark(str(question_dir), str(images), splits=["random"], max_new_tokens=4)
    asked = counting(monkeypatch)
    out = tmp_path / "out"
    answers = runner.generate_answers(bench, backbone, out, batch_size=2)
    assert list(answers) == ["random/1", "random/2", "random/3"] and len(asked) == 3
    lines = (out / runner.ANSWERS_FILE).read_text().splitlines()
    assert [json.loads(line)["question_id"] for line in lines] == list(answers)
    # a crash after the first answer, mid-way through writing the second: resume asks the two missing ones only
    (out / runner.ANSWERS_FILE).write_text(lines[0] + "\n" + lines[1][:20])
    again = runner.generate_answers(bench, backbone, out, batch_size=2)
    assert again == answers and len(asked) == 5
    assert len((out / runner.ANSWERS_FILE).read_text().splitlines()) == 3
    # nothing left to ask
    runner.generate_answers(bench, backbone, out, batch_size=2)
    assert len(asked) == 5


def test_a_question_shared_by_splits_is_asked_once(pope_files, backbone, tmp_path, monkeypatch):
    question_dir, images = pope_files
    write_jsonl(question_dir / "coco_pope_popular.json", POPE_ROWS[:2])  # the same two probes
    bench = PopeBenchmark(str(question_dir), str(images), splits=["random", "popular"], max_new_tokens=2)
    asked = counting(monkeypatch)
    answers = runner.generate_answers(bench, backbone, tmp_path / "out", batch_size=8)
    assert len(answers) == 5 and len(asked) == 3
    assert answers["popular/1"] == answers["random/1"]


def test_resuming_under_other_settings_is_refused(pope_files, backbone, tmp_path):
    question_dir, images = pope_files
    out = tmp_path / "out"
    runner.generate_answers(PopeBenchmark(str(question_dir), str(images), splits=["random"], max_new_tokens=2),
                            backbone, out, model_name="model-a")
    with pytest.raises(DataError, match="written with other settings.*model"):
        runner.generate_answers(PopeBenchmark(str(question_dir), str(images), splits=["random"], max_new_tokens=2),
                                backbone, out, model_name="model-b")
    with pytest.raises(DataError, match="written with other settings.*benchmark"):
        runner.generate_answers(PopeBenchmark(str(question_dir), str(images), splits=["random"], max_new_tokens=3),
                                backbone, out, model_name="model-a")
    write_jsonl(tmp_path / "other" / runner.ANSWERS_FILE, [{"id": 1, "text": "not ours"}])
    with pytest.raises(DataError, match="not an answer record"):
        runner.generate_answers(PopeBenchmark(str(question_dir), str(images), splits=["random"]), backbone,
                                tmp_path / "other")


def test_missing_images_fail_before_generation(pope_files, backbone, tmp_path):
    question_dir, images = pope_files
    (images / POPE_ROWS[1]["image"]).unlink()
    bench = PopeBenchmark(str(question_dir), str(images), splits=["random"])
    with pytest.raises(DataError, match=r"1 of 3 questions have no image file.*random/2"):
        runner.generate_answers(bench, backbone, tmp_path / "out")
    with pytest.raises(ConfigError, match="benchmark.image_dir is not set"):
        runner.generate_answers(PopeBenchmark(str(question_dir), splits=["random"]), backbone, tmp_path / "out2")


def test_evaluate_rescores_an_official_answers_file_without_a_model(tmp_path, pope_files):
    question_dir, _ = pope_files
    answers = write_jsonl(tmp_path / "llava_answers.jsonl", [{"question_id": 1, "text": "Yes"},
                                                             {"question_id": 2, "text": "No, there is not."},
                                                             {"question_id": 3, "text": "No"}])
    out = tmp_path / "run"
    cfg = compose_evaluate(["benchmark=pope", f"benchmark.question_dir={question_dir}", "benchmark.splits=[random]",
                            f"answers_file={answers}"], out)
    metrics = evaluate(cfg)
    # labels yes/no/yes, answers yes/no/no: TP=1 TN=1 FN=1 -> accuracy 2/3, precision 1, recall 1/2, F1 2/3
    assert metrics["pope/random/accuracy"] == pytest.approx(2 / 3)
    assert metrics["pope/random/f1"] == pytest.approx(2 / 3)
    assert json.loads((out / runner.METRICS_FILE).read_text()) == metrics
    with pytest.raises(ConfigError, match="nothing to evaluate"):
        evaluate(compose_evaluate(["benchmark=pope", f"benchmark.question_dir={question_dir}"], out))
    with pytest.raises(ConfigError, match=r"benchmark=amber needs these values.*benchmark.data_dir="):
        evaluate(compose_evaluate(["benchmark=amber", f"answers_file={answers}"], out))


def test_every_benchmark_option_composes(tmp_path):
    for option in ("pope", "chair_coco", "amber", "mmhal"):
        cfg = compose_evaluate([f"benchmark={option}"], tmp_path)
        assert cfg.benchmark.name == option and cfg.benchmark._target_.startswith("vlmalign.eval.benchmarks.")
    assert cfg.task_name == "eval_mmhal" and cfg.benchmark.judge.base_url is None
    write_json(tmp_path / "t.json", [])  # an empty template is refused at build time, naming the file
    with pytest.raises(DataError, match="t.json has no usable records"):
        evaluate(compose_evaluate(["benchmark=mmhal", f"benchmark.template_file={tmp_path / 't.json'}",
                                  "answers_file=x.json"], tmp_path))


def test_a_user_error_is_one_line_and_exit_status_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["vlmalign-eval", "benchmark=pope", f"benchmark.question_dir={tmp_path}",
                                      "--answers", "x.jsonl", f"hydra.run.dir={tmp_path / 'run'}"])
    with pytest.raises(SystemExit) as caught:
        main()
    assert caught.value.code == 2
    assert "vlmalign-eval: error: POPE random question file" in capsys.readouterr().err


def test_flags_become_hydra_overrides():
    assert translate_flags(["benchmark=pope", "--answers", "a.jsonl", "--model=ckpt/model"]) == [
        "benchmark=pope", "answers_file=a.jsonl", "model_path=ckpt/model"]


def test_vlmalign_eval_end_to_end_with_a_tiny_model(tiny_checkpoint, pope_files, tmp_path):
    """The console script on a 3-question POPE fixture: answers, metrics, then a re-score with --answers."""
    question_dir, images = pope_files
    script = Path(sys.executable).with_name("vlmalign-eval")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLMALIGN_ROOT": str(tmp_path)}
    common = ["benchmark=pope", f"benchmark.question_dir={question_dir}", "benchmark.splits=[random]",
              "benchmark.max_new_tokens=4"]
    out = tmp_path / "run"
    done = subprocess.run([str(script), *common, f"benchmark.image_dir={images}", "--model", str(tiny_checkpoint),
                           f"output_dir={out}", "batch_size=2"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    assert [r["question_id"] for r in rows] == ["random/1", "random/2", "random/3"]
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("accuracy", "precision", "recall", "f1", "yes_ratio"):
        assert 0.0 <= metrics[f"pope/random/{key}"] <= 1.0
    assert metrics["pope/num_answered"] == 3.0
    rescored = subprocess.run([str(script), *common, "--answers", str(out / "answers.jsonl"),
                               f"output_dir={tmp_path / 'rescore'}"],
                              capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert rescored.returncode == 0, rescored.stderr[-3000:]
    again = json.loads((tmp_path / "rescore" / "metrics.json").read_text())
    assert {k: v for k, v in again.items() if "time_s" not in k} == {k: v for k, v in metrics.items()
                                                                     if "time_s" not in k}
