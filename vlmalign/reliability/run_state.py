"""Run state a checkpoint must carry for an exact resume, and checkpoints on preemption.

Lightning saves model, optimizer, scheduler and loop counters; this callback adds the global RNG
states (torch, Python, NumPy) so anything drawing from them continues the same stream, and turns
SIGTERM / SIGUSR1 (cluster preemption notices) into a checkpoint at the next step boundary before
the process exits. SIGKILL cannot be caught: the last periodic checkpoint is the resume point.
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


class RunStateCallback(pl.Callback):
    def __init__(self) -> None:
        self._previous_usr1 = None

    def state_dict(self) -> dict:
        return {"rng": rng_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        set_rng_state(state_dict["rng"])

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # SIGUSR1 is what SLURM and other schedulers send ahead of preemption; treat it as SIGTERM,
        # which Lightning already turns into a clean stop at the end of the current step.
        if hasattr(signal, "SIGUSR1"):
            self._previous_usr1 = signal.signal(signal.SIGUSR1, self._forward_to_sigterm)

    def _forward_to_sigterm(self, signum, frame) -> None:
        handler = signal.getsignal(signal.SIGTERM)
        if callable(handler):
            handler(signal.SIGTERM, frame)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore_usr1()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._restore_usr1()
        if isinstance(exception, SIGTERMException):  # raised at a step boundary: the state is consistent
            path = checkpoint_dir(trainer) / "last.ckpt"
            trainer.save_checkpoint(path)
            log.warning("preempted at step %d: checkpoint saved to %s; rerun with resume=true",
                        trainer.global_step, path)

    def _restore_usr1(self) -> None:
        if self._previous_usr1 is not None:
            signal.signal(signal.SIGUSR1, self._previous_usr1)
            self._previous_usr1 = None


def checkpoint_dir(trainer: pl.Trainer) -> Path:
    """Where the run's periodic checkpoints go (so ``resume=true`` finds the preemption one beside them)."""
    if trainer.checkpoint_callback is not None and trainer.checkpoint_callback.dirpath:
        return Path(trainer.checkpoint_callback.dirpath)
    return Path(trainer.default_root_dir) / "checkpoints"
