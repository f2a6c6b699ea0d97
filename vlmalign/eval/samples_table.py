"""Per-sample hallucination marks, and the wandb table of evaluated images with their captions and marks.

The corpus metrics (CHAIR_i, Cover, ...) say how often a model hallucinates; the table shows *what*: for
each image, the generated caption next to the scene's objects, the mentions with no such object in the
scene, and the size/position/count claims that are wrong. The marks come from the same scorer as the
metrics (``hallucination.score_caption``), so the table and the numbers cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vlmalign.data.shapes.parse import Mention
from vlmalign.data.shapes.world import Scene, ShapeObject
from vlmalign.eval.hallucination import score_caption

COLUMNS = ["image_id", "image", "caption", "objects", "hallucinated", "chair_i", "covered", "size_errors",
           "position_errors", "count_correct"]


def describe(item: Mention | ShapeObject) -> str:
    words = " ".join(w for w in (item.size, item.color, item.shape) if w)
    return f"{words} at {item.position}" if item.position else words


def sample_marks(scene: Scene, caption: str) -> dict[str, Any]:
    """What ``caption`` gets wrong about ``scene``, one value per table column after ``objects``."""
    score = score_caption(scene, caption)
    return {
        "hallucinated": "; ".join(describe(m) for m in score.hallucinated),
        "chair_i": len(score.hallucinated) / len(score.mentions) if score.mentions else 0.0,
        "covered": f"{len(score.covered)}/{len(scene.objects)}",
        "size_errors": score.attribute_errors,
        "position_errors": score.spatial_errors,
        "count_correct": "" if score.count_correct is None else score.count_correct,  # no count stated
    }


def table_rows(evaluator: Any, samples: Iterable[dict], limit: int) -> list[list[Any]]:
    """Rows for ``COLUMNS`` from an evaluator (its ``scenes`` and rendered ``images``) and its samples."""
    import wandb

    scenes = {scene.image_id: scene for scene in evaluator.scenes}
    rows = []
    for sample in list(samples)[:limit]:
        scene = scenes[sample["image_id"]]
        marks = sample_marks(scene, sample["response"])
        rows.append([scene.image_id, wandb.Image(evaluator.images[scene.image_id]), sample["response"],
                     "; ".join(describe(o) for o in scene.objects), *(marks[c] for c in COLUMNS[4:])])
    return rows


def log_samples_table(loggers: Iterable[Any], key: str, evaluator: Any, samples: list[dict],
                      step: int | None = None, limit: int = 16) -> None:
    """Log the first ``limit`` samples as a wandb table to every WandbLogger in ``loggers`` (no-op without one)."""
    from pytorch_lightning.loggers import WandbLogger

    targets = [logger for logger in loggers if isinstance(logger, WandbLogger)]
    if not targets or limit <= 0 or not hasattr(evaluator, "images"):  # marks need the scenes' ground truth
        return
    rows = table_rows(evaluator, samples, limit)
    for logger in targets:
        logger.log_table(key, columns=COLUMNS, data=rows, step=step)
