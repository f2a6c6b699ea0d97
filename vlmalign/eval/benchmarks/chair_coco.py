"""CHAIR on COCO (Rohrbach et al. 2018, "Object Hallucination in Image Captioning"), offline.

Ground truth per image, as the official ``chair.py`` builds it: the COCO categories of its instance
annotations (``instances_val2014.json``: ``images``, ``annotations``, ``categories``), plus the COCO
objects its reference captions mention (``captions_val2014.json``, optional). A generated caption's
object mentions are found with the synonym list and rules of ``coco_words.py``: tokens are singularised,
two-word objects ("traffic light", "hot dog") read as one, "baby"/"adult" + animal and "passenger" +
jet/train read as the animal/vehicle, "seat" is dropped when "toilet" is present.

- CHAIR_i = hallucinated mentions / all mentions (every mention counts, repeats included);
- CHAIR_s = captions with at least one hallucinated mention / captions;
- recall  = ground-truth categories mentioned / ground-truth categories (summed over captions).

Object HalBench (RLHF-V, RLAIF-V, mDPO report it) is CHAIR_s/CHAIR_i on 300 COCO images with
detailed-description prompts; the RLAIF-V copy of its script first asks GPT-3.5 to list the objects
of the answer. This module is the rule-based CHAIR without that LLM step (docs/benchmarks.md).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vlmalign.errors import ConfigError, DataError
from vlmalign.eval.benchmarks import coco_words
from vlmalign.eval.benchmarks.common import (
    Benchmark,
    Question,
    RowError,
    RowValidator,
    iter_records,
    ratio,
    read_json,
    require,
    resolve,
    row_id,
)
from vlmalign.eval.benchmarks.words import Singularizer, tokenize


@dataclass(frozen=True)
class Mention:
    word: str  # the word (or two-word phrase) as read after singularising
    category: str  # its COCO category


class CocoObjectExtractor:
    """The COCO objects a caption mentions (``CHAIR.caption_to_words`` of the official script)."""

    def __init__(self) -> None:
        self.inverse = coco_words.inverse_synonyms()
        self.double_words = coco_words.double_word_map()
        known = {part for phrase in [*self.inverse, *self.double_words, *self.double_words.values()]
                 for part in phrase.split()}
        self.singular = Singularizer(known)

    def mentions(self, caption: str) -> list[Mention]:
        words = [self.singular(token) for token in tokenize(caption)]
        merged, i = [], 0
        while i < len(words):
            pair = " ".join(words[i:i + 2])
            if i + 1 < len(words) and pair in self.double_words:
                merged.append(self.double_words[pair])
                i += 2
            else:
                merged.append(words[i])
                i += 1
        if "toilet" in merged and "seat" in merged:  # "the seat of the toilet" is not a chair
            merged = [w for w in merged if w != "seat"]
        return [Mention(w, self.inverse[w]) for w in merged if w in self.inverse]

    def categories(self, caption: str) -> set[str]:
        return {m.category for m in self.mentions(caption)}


def chair_scores(items: Iterable[tuple[str, set[str]]], extractor: CocoObjectExtractor | None = None
                 ) -> dict[str, float]:
    """CHAIR_s, CHAIR_i and recall of (caption, ground-truth categories) pairs; rates are 0.0 when empty."""
    extractor = extractor or CocoObjectExtractor()
    captions = mentions = hallucinated = hallucinated_captions = gt_total = gt_recalled = 0
    for caption, truth in items:
        found = extractor.mentions(caption)
        wrong = [m for m in found if m.category not in truth]
        captions += 1
        mentions += len(found)
        hallucinated += len(wrong)
        hallucinated_captions += bool(wrong)
        gt_total += len(truth)
        gt_recalled += len({m.category for m in found if m.category in truth})
    return {
        "chair_s": ratio(hallucinated_captions, captions),
        "chair_i": ratio(hallucinated, mentions),
        "recall": ratio(gt_recalled, gt_total),
        "mentions_per_caption": ratio(mentions, captions),
        "num_captions": float(captions),
    }


@dataclass
class CocoAnnotations:
    file_names: dict[str, str]  # image id -> file name
    objects: dict[str, set[str]]  # image id -> COCO categories present


def load_coco_instances(paths: Sequence[str | Path], rows: RowValidator) -> CocoAnnotations:
    """Images and per-image categories of one or more ``instances_*.json`` files."""
    file_names: dict[str, str] = {}
    objects: dict[str, set[str]] = {}
    for path in paths:
        data = _coco_file(path, "COCO instances file", ("images", "annotations", "categories"))
        categories: dict[int, str] = {}
        for index, row in enumerate(data["categories"]):
            parsed = rows.parse(f"{path}: categories[{index}]", row, _category)
            if parsed is not None:
                categories[parsed[0]] = parsed[1]
        for index, row in enumerate(data["images"]):
            parsed = rows.parse(f"{path}: images[{index}]", row, _image)
            if parsed is not None:
                file_names[parsed[0]] = parsed[1]
                objects.setdefault(parsed[0], set())
        for index, row in enumerate(data["annotations"]):
            parsed = rows.parse(f"{path}: annotations[{index}]", row,
                                lambda r, c=categories: _instance(r, c, file_names))
            if parsed is not None:
                objects[parsed[0]].add(parsed[1])
    if not file_names:
        raise DataError(f"the COCO instances files {list(map(str, paths))} list no images")
    return CocoAnnotations(file_names, objects)


def add_caption_objects(annotations: CocoAnnotations, paths: Sequence[str | Path], image_ids: set[str],
                        rows: RowValidator, extractor: CocoObjectExtractor) -> None:
    """Add the objects the reference captions of ``image_ids`` mention (the official script does)."""
    for path in paths:
        data = _coco_file(path, "COCO captions file", ("annotations",))
        for index, row in enumerate(data["annotations"]):
            parsed = rows.parse(f"{path}: annotations[{index}]", row, _caption)
            if parsed is None:
                continue
            image_id, caption = parsed
            if image_id not in annotations.file_names:
                rows.parse(f"{path}: annotations[{index}]", row, _unknown_image(image_id))
                continue
            if image_id in image_ids:
                annotations.objects[image_id] |= extractor.categories(caption)


def _coco_file(path: str | Path, what: str, keys: tuple[str, ...]) -> dict:
    data = read_json(path, what)
    if not isinstance(data, dict):
        raise DataError(f"{what} {path}: expected a JSON object with {list(keys)}, got {type(data).__name__}")
    for key in keys:
        if not isinstance(data.get(key), list):
            raise DataError(f"{what} {path}: no {key!r} list (keys: {sorted(data)})")
    return data


def _category(row) -> tuple[int, str]:
    category_id = require(row, "id", int)
    name = require(row, "name", str).strip().lower()
    if name not in coco_words.SYNONYMS:
        raise RowError(f"category name {name!r} is not one of the 80 COCO categories CHAIR's synonym list covers")
    return category_id, name


def _image(row) -> tuple[str, str]:
    return row_id(require(row, "id", int)), require(row, "file_name", str)


def _instance(row, categories: dict[int, str], file_names: dict[str, str]) -> tuple[str, str]:
    image_id = row_id(require(row, "image_id", int))
    category_id = require(row, "category_id", int)
    if category_id not in categories:
        raise RowError(f"category_id {category_id} is not in the file's categories")
    if image_id not in file_names:
        raise RowError(f"image_id {image_id} is not in the file's images")
    return image_id, categories[category_id]


def _caption(row) -> tuple[str, str]:
    return row_id(require(row, "image_id", int)), require(row, "caption", str, nonempty=False)


def _unknown_image(image_id: str):
    def fail(row):
        raise RowError(f"image_id {image_id} is not in the instances files' images")
    return fail


class ChairCocoBenchmark(Benchmark):
    """Caption COCO images; score the captions with CHAIR against the instance (and caption) annotations."""

    name = "chair_coco"
    default_max_new_tokens = 512

    def __init__(
        self,
        annotation_dir: str,
        instances_files: Sequence[str] = ("instances_val2014.json",),
        captions_files: Sequence[str] = (),
        image_dir: str | None = None,
        image_ids_file: str | None = None,
        num_images: int | None = 500,
        seed: int = 0,
        prompt: str = "Please describe this image in detail.",
        name: str = "chair_coco",
        on_bad_row: str = "raise",
        max_new_tokens: int | None = None,
    ) -> None:
        super().__init__(name, image_dir, on_bad_row, max_new_tokens)
        if not prompt or not prompt.strip():
            raise ConfigError("benchmark.prompt is empty")
        if num_images is not None and num_images < 1:
            raise ConfigError(f"benchmark.num_images={num_images} must be >= 1 (or null: every image)")
        self.prompt, self.seed, self.num_images = prompt, seed, num_images
        self.extractor = CocoObjectExtractor()
        self.annotations = load_coco_instances([resolve(annotation_dir, p) for p in instances_files], self.rows)
        if image_ids_file:
            image_ids = self._listed_ids(resolve(annotation_dir, image_ids_file))
        else:
            image_ids = sorted(self.annotations.file_names, key=int)
            if num_images is not None and num_images < len(image_ids):
                image_ids = sorted(random.Random(seed).sample(image_ids, num_images), key=int)
        add_caption_objects(self.annotations, [resolve(annotation_dir, p) for p in captions_files], set(image_ids),
                            self.rows, self.extractor)
        self._questions = [Question(i, self.annotations.file_names[i], prompt, {"image_id": int(i)})
                           for i in image_ids]
        self._ids = {q.id for q in self._questions}

    def _listed_ids(self, path: Path) -> list[str]:
        """Image ids from a JSON list / JSON lines of ids or of objects with ``image_id`` (Object HalBench's
        question file has one per line)."""
        ids: list[str] = []
        for where, row in iter_records(path, "image id file"):
            image_id = self.rows.parse(where, row, self._listed_id)
            if image_id is not None and image_id not in ids:
                ids.append(image_id)
        if not ids:
            raise DataError(f"image id file {path} lists no image ids")
        return ids

    def _listed_id(self, row) -> str:
        image_id = row_id(require(row, "image_id", (int, str)) if isinstance(row, dict) else row)
        if image_id not in self.annotations.file_names:
            raise RowError(f"image id {image_id} is not in the COCO instances files")
        return image_id

    def questions(self) -> list[Question]:
        return list(self._questions)

    def score_answers(self, questions: list[Question], answers: Mapping[str, str],
                      output_dir: Path | None) -> dict[str, float]:
        items = [(answers[q.id], self.annotations.objects[q.id]) for q in questions]
        return chair_scores(items, self.extractor)

    def identity(self) -> dict:
        return {**super().identity(), "prompt": self.prompt}
