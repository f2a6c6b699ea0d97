"""Ask a model a benchmark's questions (resumably), score the answers, write ``metrics.json`` atomically.

``answers.jsonl`` gets one flushed line per answered question (``question_id, image, prompt, answer``), so
a killed run loses at most the batch in flight; rerunning with the same ``output_dir`` answers only what
is missing. ``answers.meta.json`` pins the benchmark settings and the model, so a resumed run can never
mix two models' answers in one file. Generation is ``vlmalign.models.generation.generate_responses``
(greedy, batched, left-padded); a question shared by several splits (POPE's positives) is asked once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from vlmalign.errors import DataError
from vlmalign.eval.benchmarks.common import Benchmark, Question
from vlmalign.io.jsonl import JsonlAppender, iter_jsonl, repair_truncated_tail
from vlmalign.models.generation import generate_responses
from vlmalign.utils.files import write_json_atomic

log = logging.getLogger("vlmalign.eval")

ANSWERS_FILE = "answers.jsonl"
META_FILE = "answers.meta.json"
METRICS_FILE = "metrics.json"


def missing_images(benchmark: Benchmark, questions: list[Question]) -> list[str]:
    """``question id: path`` of each image that is not a file (checked before a model is loaded)."""
    seen: dict[str, bool] = {}
    missing = []
    for question in questions:
        path = benchmark.image_path(question)
        key = str(path)
        if key not in seen:
            seen[key] = path.is_file()
        if not seen[key]:
            missing.append(f"{question.id}: {path}")
    return missing


def check_images(benchmark: Benchmark, questions: list[Question]) -> None:
    missing = missing_images(benchmark, questions)
    if missing:
        raise DataError(f"{len(missing)} of {len(questions)} questions have no image file (benchmark.image_dir="
                        f"{benchmark.image_dir}); first: {missing[:3]}")


def load_image(path: Path, question: Question) -> Image.Image:
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError) as error:
        raise DataError(f"question {question.id}: cannot read image {path}: {error}") from None


def read_existing_answers(path: Path) -> dict[str, str]:
    """Answers already in our ``answers.jsonl`` (a last line cut by a crash is repaired first)."""
    if not path.exists():
        return {}
    answers = {}
    rows = list(iter_jsonl(path, skip_truncated_tail=True))  # validate everything before cutting anything
    for number, row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("question_id"), str) or \
                not isinstance(row.get("answer"), str):
            raise DataError(f"{path}:{number}: not an answer record (question_id, answer); this output_dir holds "
                            "some other file, choose another output_dir")
        answers[row["question_id"]] = row["answer"]
    cut = repair_truncated_tail(path)
    if cut:
        log.warning("%s: cut a last line left half-written by a killed run", path)
    return answers


def check_meta(output_dir: Path, meta: Mapping[str, Any]) -> None:
    """Refuse to resume answers written under other settings; record them for a fresh file."""
    path = output_dir / META_FILE
    answers = output_dir / ANSWERS_FILE
    if path.exists() and answers.exists():
        try:
            recorded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise DataError(f"{path} is unreadable ({error}); move {answers} away to start over") from None
        if recorded != json.loads(json.dumps(meta)):
            changed = sorted(k for k in {*recorded, *meta} if recorded.get(k) != meta.get(k))
            raise DataError(f"{answers} was written with other settings ({', '.join(changed)} differ: "
                            f"{ {k: recorded.get(k) for k in changed} }); use another output_dir, or move it away")
        return
    write_json_atomic(path, dict(meta))


def generate_answers(
    benchmark: Benchmark,
    backbone,
    output_dir: str | Path,
    batch_size: int = 16,
    questions: list[Question] | None = None,
    model_name: str | None = None,
) -> dict[str, str]:
    """Answers to ``questions`` (default: all of the benchmark's), generating only those not yet in
    ``output_dir/answers.jsonl``; returns every answer for ``questions``."""
    output_dir = Path(output_dir)
    questions = benchmark.questions() if questions is None else questions
    check_meta(output_dir, {"benchmark": benchmark.identity(), "model": model_name or backbone.name})
    path = output_dir / ANSWERS_FILE
    answers = read_existing_answers(path)
    todo = [q for q in questions if q.id not in answers]
    if len(todo) < len(questions):
        log.info("%s: %d of %d questions already answered in %s; resuming", benchmark.name,
                 len(questions) - len(todo), len(questions), path)
    check_images(benchmark, todo)
    # One generation per distinct (image, prompt, length); grouped by length so a batch shares max_new_tokens.
    groups: dict[tuple[str, str, int], list[Question]] = {}
    for question in todo:
        key = (question.image, question.prompt, benchmark.max_new_tokens_for(question))
        groups.setdefault(key, []).append(question)
    keys = sorted(groups, key=lambda k: k[2])
    done = 0
    with JsonlAppender(path) as out:
        for start in range(0, len(keys), batch_size):
            chunk = keys[start:start + batch_size]
            for length in sorted({k[2] for k in chunk}):
                part = [k for k in chunk if k[2] == length]
                images = [load_image(benchmark.image_path(groups[k][0]), groups[k][0]) for k in part]
                replies = generate_responses(backbone, images, [k[1] for k in part], length, batch_size)
                for key, reply in zip(part, replies):
                    for question in groups[key]:
                        answers[question.id] = reply
                        out.write({"question_id": question.id, "image": question.image, "prompt": question.prompt,
                                   "answer": reply})
                        done += 1
            log.info("%s: answered %d of %d new questions", benchmark.name, done, len(todo))
    return {q.id: answers[q.id] for q in questions}


def write_metrics(output_dir: str | Path, metrics: Mapping[str, float]) -> Path:
    """``metrics.json``, written atomically (a reader never sees half a file)."""
    path = Path(output_dir) / METRICS_FILE
    write_json_atomic(path, dict(metrics))
    return path
