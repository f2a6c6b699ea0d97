"""Validation callback: exact hallucination metrics of the current policy, logged as ``val/*``."""

from __future__ import annotations

import pytorch_lightning as pl

from vlmalign.eval.shapes_evaluator import ShapesEvaluator


class HallucinationEvalCallback(pl.Callback):
    def __init__(self, evaluator: ShapesEvaluator) -> None:
        self.evaluator = evaluator

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        result = self.evaluator.evaluate(pl_module.backbone)
        pl_module.log_dict({f"val/{k}": float(v) for k, v in result.metrics.items()})
