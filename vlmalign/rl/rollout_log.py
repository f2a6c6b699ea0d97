"""What the policy sampled: each validation's rollouts (fixed seed, so comparable across steps) as JSON lines, one
per response with its tokens, summed log-prob and reward, and as a wandb table of sample generations."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from torch import Tensor

from vlmalign.io.jsonl import JsonlAppender
from vlmalign.rl.rollout import Rollout

COLUMNS = ["step", "sample_id", "response", "reward", "tokens", "logp"]


def rollout_rows(step: int, rollout: Rollout, scores: Tensor, logps: Tensor) -> list[dict[str, Any]]:
    """One row per response; ``logps`` (B,) the summed log-probs of the responses under the policy."""
    return [{"step": step, "sample_id": rollout.prompt_of(row).sample_id, "response": text,
             "reward": float(scores[row]), "tokens": len(rollout.responses[row]), "logp": float(logps[row])}
            for row, text in enumerate(rollout.texts)]


def write_rollouts(path: str | Path, rows: Iterable[dict[str, Any]], loggers: Iterable[Any] = (),
                   table_rows: int = 16) -> None:
    """Append ``rows`` to ``path`` (crash-safe JSON lines) and log the first ``table_rows`` of them as a
    ``val/rollouts`` table to every WandbLogger."""
    from pytorch_lightning.loggers import WandbLogger

    rows = list(rows)
    with JsonlAppender(path) as out:
        for row in rows:
            out.write(row)
    for logger in loggers:
        if isinstance(logger, WandbLogger) and rows:
            logger.log_table("val/rollouts", columns=COLUMNS, data=[[r[c] for c in COLUMNS] for r in rows[:table_rows]],
                             step=rows[0]["step"])
