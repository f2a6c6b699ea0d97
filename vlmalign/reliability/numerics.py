"""Stop (or skip) on NaN/Inf before it reaches the weights.

Checked on the gradients just before the optimizer step (a non-finite loss makes them non-finite
too), so a bad batch never updates the model and the last checkpoint stays the last good state.
``policy="stop"`` raises a NumericalError naming the step and the batch's sample ids;
``policy="skip"`` drops that step's gradients (AdamW skips parameters without one), counts it, and
stops once ``max_skipped`` steps were skipped. The counter is saved in checkpoints.
"""

from __future__ import annotations

import logging

import pytorch_lightning as pl
import torch

from vlmalign.errors import VlmalignError

log = logging.getLogger(__name__)
POLICIES = ("stop", "skip")


class NumericalError(VlmalignError):
    """NaN or Inf in the loss or the gradients."""


class NonFiniteGuard(pl.Callback):
    def __init__(self, policy: str = "stop", max_skipped: int = 10) -> None:
        if policy not in POLICIES:
            raise VlmalignError(f"numerics.policy={policy!r} is not one of {POLICIES}")
        self.policy, self.max_skipped = policy, max_skipped
        self.skipped = 0
        self._batch_ids: list[str] = []
        self._loss_finite = True

    def state_dict(self) -> dict:
        return {"skipped": self.skipped}

    def load_state_dict(self, state_dict: dict) -> None:
        self.skipped = int(state_dict["skipped"])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._batch_ids = list(batch.get("sample_ids", []))[:8]

    def on_before_backward(self, trainer, pl_module, loss: torch.Tensor) -> None:
        self._loss_finite = bool(torch.isfinite(loss).all())

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if self._loss_finite and all(bool(torch.isfinite(g).all()) for g in grads):
            return
        what = "loss" if not self._loss_finite else "gradients"
        where = f"non-finite {what} at step {trainer.global_step} (batch samples {self._batch_ids})"
        if self.policy == "skip" and self.skipped < self.max_skipped:
            self.skipped += 1
            for group in optimizer.param_groups:
                for p in group["params"]:
                    p.grad = None
            log.warning("%s: step skipped (%d of at most %d)", where, self.skipped, self.max_skipped)
            pl_module.log("train/skipped_steps", float(self.skipped))
            return
        limit = f"; {self.skipped} steps were skipped already (numerics.max_skipped)" if self.policy == "skip" else ""
        raise NumericalError(f"{where}{limit}. The weights were not updated with it; the last checkpoint in "
                             f"{trainer.default_root_dir}/checkpoints is the last good state. Lower the learning "
                             "rate, check the data of those samples, or set numerics.policy=skip.")
