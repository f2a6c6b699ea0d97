"""Run state a checkpoint must carry for an exact resume, and checkpoints on preemption.

Lightning saves model, optimizer, scheduler and loop counters; this callback adds the global RNG
states (torch, Python, NumPy) so anything drawing from them continues the same stream, and turns
SIGTERM / SIGUSR1 (cluster preemption notices) into a checkpoint at the next step boundary before
the process exits. SIGKILL cannot be caught: the last periodic checkpoint is the resume point.

Why not Lightning's own SIGTERM handling: in one process it raises at the end of the step's
validation, or, on an epoch's last batch, only after the epoch-end hooks have counted the epoch as
done. A checkpoint taken there records "epoch 1, batch 25" where a periodic one of the same step
records "epoch 0, batch 24", and the resume skipped a whole epoch of data. Here the signal only sets
a flag; the checkpoint is saved in ``on_train_batch_end``, the very point where ``ModelCheckpoint``
saves its periodic ones, so a preemption checkpoint is one a periodic save could have written. A
signal during validation is acted on at the end of the next step (validation does not change the
weights, and its position cannot be restored exactly).
"""

from __future__ import annotations

import logging
import random
import signal
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)
PREEMPTION_SIGNALS = ("SIGTERM", "SIGUSR1")


def rng_state() -> dict:
    """Plain containers and tensors only, so the checkpoint loads with ``weights_only=True``."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached]}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))


class BaseBuildPreempted(SIGTERMException):
    """Preempted while training an SFT base: its scratch folder is deleted, so there is nothing to resume."""


class RunStateCallback(pl.Callback):
    """``resumable=False`` (an SFT base build): on preemption, stop without a checkpoint, which would be deleted
    with the build's scratch folder, and say that the build starts over."""

    def __init__(self, resumable: bool = True) -> None:
        self.resumable = resumable
        self._previous: dict[int, object] = {}
        self._signalled: str | None = None

    def state_dict(self) -> dict:
        return {"rng": rng_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        set_rng_state(state_dict["rng"])

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After Lightning registered its handlers (just before the loops start); its teardown puts back the
        # handlers that were there before fit, ours included.
        for name in PREEMPTION_SIGNALS:
            if hasattr(signal, name):
                self._previous[getattr(signal, name)] = signal.signal(getattr(signal, name), self._note_signal)

    def _note_signal(self, signum, frame) -> None:
        self._signalled = signal.Signals(signum).name

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.fit_loop.epoch_loop._should_accumulate():  # only whole optimizer steps are checkpointed
            return
        # Every rank must stop at the same step (the save is collective): any rank's signal stops them all.
        if trainer.strategy.reduce_boolean_decision(self._signalled is not None, all=False):
            self._stop(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore_handlers()
        if self._signalled:  # after the last step (final validation): the weights are final, stop before the export
            self._stop(trainer)

    def _stop(self, trainer: pl.Trainer) -> None:
        if not self.resumable:
            log.warning("preempted at step %d of the SFT base build: a base build is not resumable, it starts over "
                        "when the job is rerun", trainer.global_step)
            raise BaseBuildPreempted
        path = checkpoint_dir(trainer) / "last.ckpt"
        trainer.save_checkpoint(path)
        log.warning("preempted at step %d by %s: checkpoint saved to %s; rerun with resume=true",
                    trainer.global_step, self._signalled or "a signal on another rank", path)
        raise SIGTERMException

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._restore_handlers()

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


def checkpoint_dir(trainer: pl.Trainer) -> Path:
    """Where the run's periodic checkpoints go (so ``resume=true`` finds the preemption one beside them)."""
    if trainer.checkpoint_callback is not None and trainer.checkpoint_callback.dirpath:
        return Path(trainer.checkpoint_callback.dirpath)
    return Path(trainer.default_root_dir) / "checkpoints"
