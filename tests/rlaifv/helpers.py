"""Plug-ins for the pipeline tests: a splitter and a labeler that make pairs from any text, deterministically.

An untrained policy samples word salad; these give every distinct response its own score, so each round
has pairs and the train stage runs (``splitter._target_`` / ``labeler._target_`` overrides).
"""

from __future__ import annotations

import zlib

from omegaconf import DictConfig, open_dict

from tests.hydra_utils import compose_app
from vlmalign.data.shapes.claims import Claim

# train.overrides of a test round: a few DPO steps of the tiny policy, checkpoints every step, a 2-scene evaluation
TRAIN = ["objective=dpo", "reference=precomputed", "model.image_size=32", "logger=none",
         "callbacks.progress_bar=null", "callbacks.lr_monitor=null", "callbacks.hallucination_eval=null",
         "callbacks.model_checkpoint.every_n_train_steps=1", "eval.num_scenes=2", "eval.max_new_tokens=4",
         "eval.pope_samplings=[]", "data.num_val_scenes=2", "scheduler.num_warmup_steps=1"]


def compose_pipeline(workdir, cache_dir, policy, *extra) -> DictConfig:
    """conf/rlaifv.yaml for a one-round test run: 4 instructions x 3 samples, these plug-ins, the tiny policy."""
    train = "[" + ",".join(f'"{o}"' for o in TRAIN) + "]"
    cfg = compose_app("rlaifv", [
        "splitter._target_=tests.rlaifv.helpers.WordClaims", "labeler=oracle",
        "labeler._target_=tests.rlaifv.helpers.ChecksumLabeler", f"policy.init_from={policy}", "rounds=1",
        "instructions.per_round=4", "world.image_size=32", "sampling.num_samples=3",
        "sampling.max_new_tokens=6", "train.batch_size=2", "train.epochs=1", f"train.overrides={train}",
        f"workdir={workdir}", *extra], workdir)
    with open_dict(cfg):
        cfg.paths.cache_dir = str(cache_dir)
    return cfg


class WordClaims:
    """One claim per distinct word."""

    def split(self, response: str) -> list[Claim]:
        return [Claim(word, f"is there {word} ?") for word in sorted(set(response.split()))]


class ChecksumLabeler:
    """Accepts a claim iff the CRC of its question is even."""

    def __init__(self, cache_dir: str | None = None) -> None:
        pass

    def probabilities(self, questions) -> list[tuple[float, float]]:
        return [(0.9, 0.1) if zlib.crc32(q.claim.question.encode()) % 2 == 0 else (0.2, 0.7) for q in questions]


class AcceptAllLabeler(ChecksumLabeler):
    """Accepts every claim: every response scores 0, so no pair has a gap."""

    def probabilities(self, questions) -> list[tuple[float, float]]:
        return [(0.9, 0.1)] * len(questions)
