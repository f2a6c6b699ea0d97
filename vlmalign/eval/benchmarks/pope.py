"""POPE (Li et al. 2023, "Evaluating Object Hallucination in Large Vision-Language Models") on its own files.

Files (https://github.com/RUCAIBox/POPE, ``output/coco/``): ``coco_pope_random.json``,
``coco_pope_popular.json``, ``coco_pope_adversarial.json``; despite the extension, JSON lines
``{"question_id": 1, "image": "COCO_val2014_000000310196.jpg", "text": "Is there a snowboard in the
image?", "label": "yes"}``. Images are COCO val2014 files named by ``image``.

Scoring follows the official ``evaluate.py`` (and LLaVA's ``eval_pope.py``): keep the answer's first
sentence (up to the first "."), drop commas, split on spaces; the answer is "no" if a word is exactly
``No``, ``no`` or ``not``, otherwise "yes" (an empty answer counts as "yes"). Positive class = "yes":
accuracy, precision, recall, F1, yes-ratio per split; ``pope/f1`` and ``pope/accuracy`` average the
splits (the names the shapes evaluator uses). A question shared by several splits (the positives are)
is generated once by the runner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from vlmalign.errors import ConfigError, DataError
from vlmalign.eval.benchmarks.common import Benchmark, Question, RowError, iter_records, require, resolve, row_id
from vlmalign.eval.pope import pope_metrics

SPLITS = ("random", "popular", "adversarial")
LABELS = {"yes": True, "no": False}


def pope_answer_is_yes(text: str) -> bool:
    """The official POPE normalisation (see the module docstring): True for "yes", False for "no"."""
    if "." in text:
        text = text.split(".")[0]
    words = text.replace(",", "").split(" ")
    return not ("No" in words or "not" in words or "no" in words)


def pope_scores(labels: Sequence[bool], answers: Sequence[str]) -> dict[str, float]:
    """Accuracy, precision, recall, F1 ("yes" positive) and yes-ratio of raw answers against labels."""
    metrics = pope_metrics(list(labels), [pope_answer_is_yes(a) for a in answers])
    metrics.pop("unanswered")  # every answer is yes or no under the official rule
    metrics["num_questions"] = float(len(labels))
    return metrics


class PopeBenchmark(Benchmark):
    name = "pope"
    default_max_new_tokens = 16

    def __init__(
        self,
        question_dir: str,
        image_dir: str | None = None,
        splits: Sequence[str] = SPLITS,
        file_pattern: str = "coco_pope_{split}.json",
        prompt_template: str = "{question}",
        name: str = "pope",
        on_bad_row: str = "raise",
        max_new_tokens: int | None = None,
    ) -> None:
        super().__init__(name, image_dir, on_bad_row, max_new_tokens)
        self.splits = tuple(splits)
        if not self.splits:
            raise ConfigError("benchmark.splits is empty: name at least one of random, popular, adversarial")
        if "{question}" not in prompt_template:
            raise ConfigError(f"benchmark.prompt_template={prompt_template!r} must contain {{question}}")
        self.prompt_template = prompt_template
        self._questions: list[Question] = []
        for split in self.splits:
            path = resolve(question_dir, file_pattern.format(split=split))
            self._questions += self._load(path, split)
        self._ids = {q.id for q in self._questions}

    def _load(self, path: Path, split: str) -> list[Question]:
        questions, seen = [], {}
        for where, row in iter_records(path, f"POPE {split} question file"):
            question = self.rows.parse(where, row, lambda r: self._parse(r, split))
            if question is None:
                continue
            if question.id in seen:
                raise DataError(f"{where}: question_id {question.meta['question_id']!r} repeats {seen[question.id]}")
            seen[question.id] = where
            questions.append(question)
        if not questions:
            raise DataError(f"POPE {split} question file {path} has no questions")
        return questions

    def _parse(self, row, split: str) -> Question:
        question_id = row_id(require(row, "question_id", (int, str)))
        image = require(row, "image", str)
        text = require(row, "text", str)
        label = require(row, "label", str).strip().lower()
        if label not in LABELS:
            raise RowError(f"label {row['label']!r} is not 'yes' or 'no'")
        return Question(f"{split}/{question_id}", image, self.prompt_template.format(question=text),
                        {"split": split, "label": LABELS[label], "question_id": question_id, "text": text})

    def questions(self) -> list[Question]:
        return list(self._questions)

    def resolve_answer_id(self, raw: str) -> str | None:
        """Our ids are ``split/question_id``; a single-split run also takes the file's bare question ids
        (LLaVA's answer files for one split)."""
        if raw in self._ids:
            return raw
        if len(self.splits) == 1 and f"{self.splits[0]}/{raw}" in self._ids:
            return f"{self.splits[0]}/{raw}"
        return None

    def score_answers(self, questions: list[Question], answers: Mapping[str, str],
                      output_dir: Path | None) -> dict[str, float]:
        metrics: dict[str, float] = {}
        scored = []
        for split in self.splits:
            in_split = [q for q in questions if q.meta["split"] == split]
            if not in_split:
                continue
            result = pope_scores([q.meta["label"] for q in in_split], [answers[q.id] for q in in_split])
            metrics.update({f"{split}/{key}": value for key, value in result.items()})
            scored.append(split)
        for key in ("f1", "accuracy"):
            metrics[key] = sum(metrics[f"{s}/{key}"] for s in scored) / len(scored) if scored else 0.0
        return metrics

    def identity(self) -> dict:
        return {**super().identity(), "prompt_template": self.prompt_template}
