"""Validation callback: exact hallucination metrics of the current policy, logged as ``val/*``.

With a wandb logger it also logs ``val/samples``: a table of images, generated captions and per-sample
hallucination marks (``samples_table.py``), so a dashboard shows what the numbers count.
"""

from __future__ import annotations

import pytorch_lightning as pl

from vlmalign.eval.samples_table import log_samples_table
from vlmalign.eval.shapes_evaluator import ShapesEvaluator


class HallucinationEvalCallback(pl.Callback):
    def __init__(self, evaluator: ShapesEvaluator, table_rows: int = 16) -> None:
        self.evaluator = evaluator
        self.table_rows = table_rows  # images in the wandb samples table; 0 logs none

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        result = self.evaluator.evaluate(pl_module.backbone)
        pl_module.log_dict({f"val/{k}": float(v) for k, v in result.metrics.items()})
        log_samples_table(trainer.loggers, "val/samples", self.evaluator, result.samples,
                          step=trainer.global_step, limit=self.table_rows)
