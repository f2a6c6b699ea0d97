"""What both sides of ``benchmarks/rl_throughput.py`` measure, measured by the same code on each side.

* Rollout tokens/s: ``GenerationTimer`` wraps the Hugging Face model's own ``generate`` (vlmalign calls it through
  ``VisionLanguageBackbone.generate``, TRL through ``_generate_single_turn``), so "generation" is the same span on
  both sides: prefill (vision tower included) and KV-cache decoding, not the prompt encoding around it. Tokens are
  each completion's up to and including its first EOS (all of them when it never stops): what both trainers then
  score and train on, not the padding a batched ``generate`` writes after a row has stopped.
* RL step time: wall clock between consecutive ends of optimizer steps, so a step spans fetching its prompts,
  rollout, scoring, old/reference log-probs, loss, backward and the optimizer (``step_summary``).
* Peak RSS of the process (each side runs in its own; ``benchmarks/process_memory.peak_rss_mib`` says why not
  ``ru_maxrss``).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from benchmarks.process_memory import peak_rss_mib


@dataclass(frozen=True)
class GenerateCall:
    start: float
    seconds: float
    tokens: int


class GenerationTimer:
    """Times every ``model.generate`` call and counts its completion tokens (the wrapper replaces the instance's
    method, so whatever calls it, the trainer's own code path is unchanged)."""

    def __init__(self, model: torch.nn.Module, eos_token_ids: list[int]) -> None:
        self.calls: list[GenerateCall] = []
        self.eos = torch.tensor(eos_token_ids)
        inner = model.generate

        def timed_generate(*args, **kwargs):
            start = time.perf_counter()
            out = inner(*args, **kwargs)
            seconds = time.perf_counter() - start
            sequences = out if isinstance(out, torch.Tensor) else out.sequences
            prompt_length = kwargs["input_ids"].shape[1]  # both trainers pass input_ids by keyword
            self.calls.append(GenerateCall(start, seconds, completion_tokens(sequences[:, prompt_length:], self.eos)))
            return out

        model.generate = timed_generate


def completion_tokens(new_tokens: torch.Tensor, eos: torch.Tensor) -> int:
    """Tokens of the (B, T) new tokens up to and including each row's first EOS (T for a row without one)."""
    is_eos = torch.isin(new_tokens.cpu(), eos)
    first = torch.where(is_eos.any(1), is_eos.int().argmax(1) + 1, new_tokens.shape[1])
    return int(first.sum())


def step_summary(step_ends: list[float], warmup: int, generation: GenerationTimer) -> dict:
    """Median step time and rollout throughput over the steps after ``warmup``; ``step_ends[0]`` is the start of the
    first step, every later entry the end of one optimizer step."""
    durations = [b - a for a, b in zip(step_ends, step_ends[1:])]
    if len(durations) <= warmup:
        raise RuntimeError(f"{len(durations)} steps ran, none after the {warmup} warm-up steps")
    timed = durations[warmup:]
    per_step = []  # (generate seconds, tokens) of each timed step
    for begin, end in zip(step_ends[warmup:], step_ends[warmup + 1:]):
        calls = [c for c in generation.calls if begin <= c.start < end]
        per_step.append((sum(c.seconds for c in calls), sum(c.tokens for c in calls)))
    return {
        "steps_timed": len(timed),
        "median_step_s": statistics.median(timed),
        "mean_step_s": statistics.mean(timed),
        "step_s": timed,  # every timed step: a shared CPU shows up here as outliers
        "rollout_tokens_per_s": statistics.median(tokens / seconds for seconds, tokens in per_step),
        "median_rollout_s": statistics.median(seconds for seconds, _ in per_step),
        "rollout_share_of_step": sum(s for s, _ in per_step) / sum(timed),
        "generated_tokens_per_step": statistics.mean(tokens for _, tokens in per_step),
        "peak_rss_mib": peak_rss_mib(),
        "torch_threads": torch.get_num_threads(),
    }
