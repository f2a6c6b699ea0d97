"""Fault injection for the crash tests and docs/reliability.md: kill the process at a chosen point.

    vlmalign-train ... +callbacks.fault._target_=vlmalign.reliability.faults.KillAtStep +callbacks.fault.step=5

``phase="batch_end"`` sends ``signum`` (default SIGKILL: nothing can be cleaned up) after the optimizer
step of ``step``, before that step's periodic checkpoint is written; ``phase="checkpoint_write"`` sends it
inside the real checkpoint save of the first checkpoint at or after ``step``, with half its bytes written
(a process that survives the signal, SIGTERM/SIGUSR1, then writes the rest); ``phase="validation"`` sends
it on the first validation batch after ``step``; ``phase="reference_pass"`` sends it after ``step`` batches
of the precomputed reference's pass, which runs before training (so the callback arms it when it is
built); ``phase="nan_loss"`` makes that step's loss NaN instead (the numerical guard's test).
"""

from __future__ import annotations

import io as io_module
import os
import signal

import pytorch_lightning as pl
import torch

PHASES = ("batch_end", "checkpoint_write", "validation", "reference_pass", "nan_loss")  # not "nan": read as a float


class KillAtStep(pl.Callback):
    def __init__(self, step: int, phase: str = "batch_end", signum: str = "SIGKILL") -> None:
        if phase not in PHASES:
            raise ValueError(f"phase={phase!r} is not one of {PHASES}")
        self.step, self.phase, self.signum = step, phase, getattr(signal, signum)
        if phase == "reference_pass":
            self._arm_reference_pass()

    def _arm_reference_pass(self) -> None:
        from vlmalign.reference import precomputed

        logps, batches = precomputed.reference_view_logps, []

        def counted(*args, **kwargs):
            batches.append(1)
            if len(batches) > self.step:
                self._send()
            return logps(*args, **kwargs)

        precomputed.reference_view_logps = counted

    def _send(self) -> None:
        os.kill(os.getpid(), self.signum)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.phase != "checkpoint_write":
            return
        io = trainer.strategy.checkpoint_io
        save = io.save_checkpoint

        def save_torn(checkpoint, path, storage_options=None):
            if trainer.global_step < self.step:
                return save(checkpoint, path, storage_options)
            real_save = torch.save

            def half_then_die(obj, handle, *args, **kwargs):  # signalled inside the real save path, mid-write
                buffer = io_module.BytesIO()
                real_save(obj, buffer, *args, **kwargs)
                data = buffer.getvalue()
                handle.write(data[: len(data) // 2])
                handle.flush()
                self._send()
                handle.write(data[len(data) // 2:])  # a caught signal (preemption): the write goes on

            torch.save = half_then_die
            try:
                save(checkpoint, path, storage_options)
            finally:
                torch.save = real_save

        io.save_checkpoint = save_torn

    def on_before_backward(self, trainer, pl_module, loss: torch.Tensor) -> None:
        if self.phase == "nan_loss" and trainer.global_step == self.step:
            loss.data.fill_(float("nan"))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.phase == "batch_end" and trainer.global_step == self.step:
            self._send()

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self.phase == "validation" and trainer.global_step >= self.step and not trainer.sanity_checking:
            self.phase = "done"  # once
            self._send()
