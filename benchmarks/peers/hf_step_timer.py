"""Step clock of a Hugging Face ``Trainer`` (TRL's trainers are ones), shared by the TRL peers."""

from __future__ import annotations

import time

from transformers import TrainerCallback

from benchmarks import device_metrics


class StepTimer(TrainerCallback):
    """Wall clock at each optimizer step's end: consecutive differences span fetch + collate + step. ``ends[0]`` is
    the start of step 1 (so warmup=0 still times the first step). ``losses``: each step's logged loss
    (logging_steps=1), before its update."""

    def __init__(self) -> None:
        self.ends: list[float] = []
        self.losses: list[float] = []

    def on_train_begin(self, args, state, control, **kwargs):
        device_metrics.synchronize()
        self.ends.append(time.perf_counter())

    def on_step_end(self, args, state, control, **kwargs):
        device_metrics.synchronize()  # the step's queued GPU work belongs to it
        self.ends.append(time.perf_counter())

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))
