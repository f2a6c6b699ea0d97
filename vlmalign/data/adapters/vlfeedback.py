"""VLFeedback (MMInstruction/VLFeedback, arXiv 2312.10665) as Silkie's DPO pairs.

Row (``vlfeedback_80k.jsonl`` or its parquet export): ``id``, ``prompt`` (older dumps: ``instruction``),
``models``, ``completions``: a list of ``{"model", "response", "annotations": {"Helpfulness": {"Rating",
"Rationale"}, "Visual Faithfulness": {...}, "Ethical Considerations": {...}}}`` with ratings as strings
("1".."5"). The image is an ``image`` column when the file has one, else ``img_path`` (the hub's loading
script writes ``merged_images/<id>.jpg``; an absolute path that does not exist here falls back to its file
name), else ``<id>.jpg``, relative to ``data.image_root``.

Pairs (Silkie): each completion is scored by the mean of its numeric aspect ratings; every pair of
completions with different scores is one example, the higher-scored response chosen. Tied pairs and
completions with no numeric rating are dropped (counted, not errors).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

from vlmalign.data.adapters.base import Adapter, Record
from vlmalign.data.adapters.validation import RowError, strip_image_placeholders, text_field

ASPECTS = ("Helpfulness", "Visual Faithfulness", "Ethical Considerations")


def mean_rating(completion: Mapping[str, Any], aspects: Sequence[str]) -> float | None:
    """Mean of the numeric ``Rating``s of ``aspects`` (None when there is none: "N/A", missing)."""
    annotations = completion.get("annotations") or {}
    ratings = []
    for aspect in aspects:
        rating = (annotations.get(aspect) or {}).get("Rating") if isinstance(annotations, Mapping) else None
        try:
            ratings.append(float(rating))
        except (TypeError, ValueError):
            continue
    return sum(ratings) / len(ratings) if ratings else None


class VLFeedbackAdapter(Adapter):
    name = "vlfeedback"
    task = "preference"
    default_format = "json"
    schema = "VLFeedback rows: id, prompt, completions: [{model, response, annotations: {<aspect>: {Rating}}}]"

    def __init__(self, aspects: Sequence[str] = ASPECTS, min_margin: float = 0.0) -> None:
        self.aspects, self.min_margin = tuple(aspects), float(min_margin)

    def scan(self, row: Mapping[str, Any]) -> tuple[list[Record], dict[str, int]]:
        prompt_field = "prompt" if row.get("prompt") is not None or row.get("instruction") is None else "instruction"
        prompt = strip_image_placeholders(text_field(row, prompt_field))
        completions = row.get("completions")
        if completions is None:
            raise RowError("missing_field", "missing field 'completions'")
        if not isinstance(completions, Sequence) or isinstance(completions, str):
            raise RowError("bad_value", "field 'completions' must be a list of {model, response, annotations}")
        scored = []
        for index, completion in enumerate(completions):
            if not isinstance(completion, Mapping) or "response" not in completion:
                raise RowError("missing_field", f"completions[{index}] has no 'response'")
            score = mean_rating(completion, self.aspects)
            if score is not None:
                scored.append((index, score, completion))
        image = self._image(row)
        records, ties = [], 0
        for (i, score_i, a), (j, score_j, b) in combinations(scored, 2):
            if abs(score_i - score_j) <= self.min_margin:
                ties += 1
                continue
            (win, won, w), (lose, lost, _) = sorted([(i, score_i, a), (j, score_j, b)], key=lambda t: -t[1])
            loser = completions[lose]
            records.append(Record(image, prompt, {"chosen": w["response"], "rejected": loser["response"]},
                                  key=f"{win}>{lose}", meta={"scores": (won, lost),
                                                             "models": (w.get("model"), loser.get("model"))}))
        stats = {"tied_pairs": ties, "unrated_completions": len(completions) - len(scored),
                 "rows_without_pairs": int(not records)}
        return records, stats

    def records(self, row: Mapping[str, Any]) -> list[Record]:
        return self.scan(row)[0]

    @staticmethod
    def _image(row: Mapping[str, Any]) -> Any:
        if row.get("image") is not None:
            return row["image"]
        if row.get("img_path"):  # the hub script's absolute path on the machine that ran it: fall back to the name
            path = Path(row["img_path"])
            return path.name if path.is_absolute() and not path.exists() else str(path)
        if row.get("id") is None:
            raise RowError("missing_image", "no 'image', no 'img_path' and no 'id' to find <id>.jpg by")
        return f"{row['id']}.jpg"

    def row_id(self, row: Mapping[str, Any]) -> str | None:
        return None if row.get("id") is None else str(row["id"])

    def identity(self) -> dict[str, Any]:
        return {"aspects": list(self.aspects), "min_margin": self.min_margin}
