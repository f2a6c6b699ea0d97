"""What every benchmark adapter shares: questions, row validation with file:row errors, answers files.

A benchmark adapter (``pope.py``, ``chair_coco.py``, ``amber.py``, ``mmhal.py``) loads the benchmark's
own files, validates each row (a bad row is a ``DataError`` naming the file and the line or list index,
or, with ``on_bad_row=skip``, a logged warning and a count in the metrics), lists the questions to ask,
and scores answers with a pure function. ``runner.py`` asks the model; scoring never needs one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlmalign.errors import ConfigError, DataError
from vlmalign.io.jsonl import iter_jsonl

log = logging.getLogger("vlmalign.eval")

BAD_ROW_POLICIES = ("raise", "skip")
# Keys an answers file may use for the question id and for the model's text, in the order they are tried:
# ours (question_id/answer), LLaVA's model_vqa (question_id/text), AMBER (id/response), CHAIR cap files
# (image_id/caption), MMHal-Bench's response template (model_answer), lmms-eval style (prediction).
ID_KEYS = ("question_id", "id", "image_id")
TEXT_KEYS = ("answer", "text", "response", "caption", "model_answer", "prediction")


@dataclass(frozen=True)
class Question:
    """One prompt to one image. ``image`` is the path as the benchmark file names it (relative to the
    benchmark's ``image_dir``); ``meta`` carries what the scorer needs (label, type, ...)."""

    id: str
    image: str
    prompt: str
    meta: Mapping[str, Any] = field(default_factory=dict)


class RowError(ValueError):
    """One row is unusable; the loader adds the file and row and applies the bad-row policy."""


def check_policy(on_bad_row: str) -> str:
    if on_bad_row not in BAD_ROW_POLICIES:
        raise ConfigError(f"benchmark.on_bad_row={on_bad_row!r} is not one of {BAD_ROW_POLICIES}")
    return on_bad_row


class RowValidator:
    """Applies the bad-row policy: ``raise`` stops at the first bad row, ``skip`` logs it and counts it."""

    def __init__(self, on_bad_row: str = "raise") -> None:
        self.on_bad_row = check_policy(on_bad_row)
        self.skipped: list[str] = []

    def parse(self, where: str, row: Any, parse: Callable[[Any], Any]) -> Any | None:
        """``parse(row)`` or, for a bad row under ``skip``, None; ``where`` is e.g. ``"file.json:12"``."""
        try:
            return parse(row)
        except RowError as error:
            message = f"{where}: {error}"
            if self.on_bad_row == "raise":
                raise DataError(message + " (set benchmark.on_bad_row=skip to skip bad rows)") from None
            log.warning("skipping a bad row: %s", message)
            self.skipped.append(message)
            return None


def require(row: Any, key: str, kind: type | tuple[type, ...], *, nonempty: bool = True) -> Any:
    """``row[key]``, checked to be of ``kind`` (and not blank); a RowError naming the field otherwise."""
    if not isinstance(row, dict):
        raise RowError(f"expected a JSON object, got {type(row).__name__}")
    if key not in row:
        raise RowError(f"missing field {key!r} (fields: {sorted(row)})")
    value = row[key]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise RowError(f"field {key!r} is a boolean, expected {_kind_name(kind)}")
    if not isinstance(value, kind):
        raise RowError(f"field {key!r} is {type(value).__name__} {value!r:.60}, expected {_kind_name(kind)}")
    if nonempty and isinstance(value, str) and not value.strip():
        raise RowError(f"field {key!r} is empty")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def string_list(row: dict, key: str) -> list[str]:
    values = require(row, key, list, nonempty=False)
    for position, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise RowError(f"field {key!r}[{position}] is {value!r:.60}, expected a non-empty string")
    return values


def read_json(path: str | Path, what: str) -> Any:
    """A whole JSON file, with the file named in every error."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read {what} {path}: {error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{what} {path}:{error.lineno}: not valid JSON ({error.msg})") from None


def iter_json_lines(path: str | Path, what: str) -> Iterator[tuple[str, Any]]:
    """(``"file:line"``, value) of each non-blank line of a JSON-lines file (the project's one reader,
    ``vlmalign.io.jsonl.iter_jsonl``), errors prefixed by what the file is."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{what} {path} does not exist")
    try:
        for number, value in iter_jsonl(path):
            yield f"{path}:{number}", value
    except DataError as error:
        raise DataError(f"{what} {error}") from None


def iter_records(path: str | Path, what: str) -> Iterator[tuple[str, Any]]:
    """Rows of a JSON list (``file[index]``) or of JSON lines (``file:line``), whichever the file holds.

    POPE's ``coco_pope_*.json`` are JSON lines despite the extension, AMBER's and MMHal-Bench's files
    are one JSON list: the content decides, not the extension.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(4096).lstrip()
    except FileNotFoundError:
        raise DataError(f"{what} {path} does not exist") from None
    except OSError as error:
        raise DataError(f"cannot read {what} {path}: {error}") from None
    if head.startswith(b"["):
        rows = read_json(path, what)
        yield from ((f"{path}[{index}]", row) for index, row in enumerate(rows))
    else:
        yield from iter_json_lines(path, what)


def row_id(value: Any) -> str:
    """Question ids as strings; JSON numbers and strings naming the same id agree (``1`` and ``"1"``)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or (isinstance(value, str) and not value.strip()):
        raise RowError(f"id {value!r:.60} is not an integer or a non-empty string")
    return str(value).strip()


def resolve(base: str | Path | None, path: str | Path) -> Path:
    """``path`` itself when absolute (or no base), else relative to ``base``."""
    path = Path(path).expanduser()
    return path if path.is_absolute() or base is None else Path(base).expanduser() / path


@dataclass
class AnswerRecord:
    question_id: str
    answer: str
    where: str


def read_answers(
    path: str | Path,
    resolve_id: Callable[[str], str | None],
    id_key: str | None = None,
    text_key: str | None = None,
    ids_from_position: bool = False,
) -> dict[str, str]:
    """Answers of an existing file (ours, or the official formats), keyed by the benchmark's question ids.

    ``resolve_id`` maps an id as the file writes it to a question id (None: unknown, a DataError naming
    the row). A question answered twice is a DataError too: which answer counts would be a guess.
    ``ids_from_position`` numbers rows without an id key 0, 1, ... (MMHal-Bench's response template).
    """
    answers: dict[str, AnswerRecord] = {}
    for position, (where, row) in enumerate(iter_records(path, "answers file")):
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object with an id and an answer, got {type(row).__name__}")
        key = text_key or next((k for k in TEXT_KEYS if k in row), None)
        if key is None or key not in row:
            wanted = text_key or " or ".join(TEXT_KEYS)
            raise DataError(f"{where}: no answer field ({wanted}); fields: {sorted(row)}")
        text = row[key]
        if not isinstance(text, str):
            raise DataError(f"{where}: answer field {key!r} is {type(text).__name__}, expected a string")
        id_field = id_key or next((k for k in ID_KEYS if k in row), None)
        if id_field is None or id_field not in row:
            if not ids_from_position:
                wanted = id_key or " or ".join(ID_KEYS)
                raise DataError(f"{where}: no question id field ({wanted}); fields: {sorted(row)}")
            raw = str(position)
        else:
            try:
                raw = row_id(row[id_field])
            except RowError as error:
                raise DataError(f"{where}: {error}") from None
        question_id = resolve_id(raw)
        if question_id is None:
            raise DataError(f"{where}: unknown question id {raw!r} (not in the benchmark's question files)")
        if question_id in answers:
            first = answers[question_id].where
            raise DataError(f"{where}: question {question_id!r} is answered twice (first at {first})")
        answers[question_id] = AnswerRecord(question_id, text, where)
    return {k: r.answer for k, r in answers.items()}


def check_complete(questions: Sequence[Question], answers: Mapping[str, str], source: str,
                   allow_partial: bool) -> list[Question]:
    """The questions that have answers; every question must have one unless ``allow_partial``."""
    answered = [q for q in questions if q.id in answers]
    missing = [q.id for q in questions if q.id not in answers]
    if missing and not allow_partial:
        raise DataError(f"{source} has no answer for {len(missing)} of {len(questions)} questions (first: "
                        f"{missing[:5]}); answer them all, or set allow_partial=true to score the answered ones")
    if missing:
        log.warning("%s: scoring %d of %d questions (allow_partial=true)", source, len(answered), len(questions))
    return answered


def ratio(numerator: float, denominator: float) -> float:
    """A rate that is 0.0 when its denominator is 0 (the official scripts divide by zero there)."""
    return numerator / denominator if denominator else 0.0


class Benchmark:
    """Base of the adapters: questions from the benchmark's files, answers in, metrics out.

    Subclasses load their files in ``__init__`` (so a bad file fails before any model is loaded) and
    implement ``questions`` and ``score_answers``; metric names are ``{name}/{metric}``.
    """

    name = "benchmark"
    default_max_new_tokens = 64

    def __init__(self, name: str | None = None, image_dir: str | None = None, on_bad_row: str = "raise",
                 max_new_tokens: int | None = None) -> None:
        self.name = name or self.name
        self.image_dir = image_dir
        self.rows = RowValidator(on_bad_row)
        self.max_new_tokens = int(max_new_tokens or self.default_max_new_tokens)

    def questions(self) -> list[Question]:
        raise NotImplementedError

    def max_new_tokens_for(self, question: Question) -> int:
        return self.max_new_tokens

    def image_path(self, question: Question) -> Path:
        if not self.image_dir:
            raise ConfigError(f"benchmark.image_dir is not set: the {self.name} images are needed to generate "
                              "answers (scoring an answers file with answers_file=... needs none)")
        return resolve(self.image_dir, question.image)

    def resolve_answer_id(self, raw: str) -> str | None:
        """The question id an answers file's id refers to (None: unknown)."""
        if not hasattr(self, "_ids"):
            self._ids = {q.id for q in self.questions()}
        return raw if raw in self._ids else None

    def read_answers(self, path: str | Path, id_key: str | None = None, text_key: str | None = None) -> dict[str, str]:
        return read_answers(path, self.resolve_answer_id, id_key, text_key)

    def score(self, answers: Mapping[str, str], output_dir: str | Path | None = None,
              allow_partial: bool = False, source: str = "the answers") -> dict[str, float]:
        """Metrics of ``answers`` (question id -> text), prefixed ``{name}/``, plus bookkeeping counts."""
        answered = check_complete(self.questions(), answers, source, allow_partial)
        metrics = self.score_answers(answered, answers, Path(output_dir) if output_dir else None)
        metrics = {f"{self.name}/{key}": float(value) for key, value in metrics.items()}
        metrics[f"{self.name}/num_answered"] = float(len(answered))
        if self.rows.skipped:
            metrics[f"{self.name}/skipped_rows"] = float(len(self.rows.skipped))
        return metrics

    def score_answers(self, questions: list[Question], answers: Mapping[str, str],
                      output_dir: Path | None) -> dict[str, float]:
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        """What shapes the questions and prompts; an answers file resumed under another identity is refused."""
        return {"benchmark": self.name, "max_new_tokens": self.max_new_tokens}
