"""Fixtures for the benchmark adapters: the negatives tests' fake OpenAI-compatible server, file writers,
and the evaluate.yaml config composed as a real run would compose it."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from tests.hydra_utils import compose_app
from tests.negatives.conftest import chat_server  # noqa: F401  (the fake OpenAI-compatible endpoint fixture)


def write_json(path: Path, payload) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))
    return path


def write_jsonl(path: Path, rows) -> Path:
    """JSON lines; a ``str`` row is written as is (to plant a broken line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def compose_evaluate(overrides: list[str], output_dir: Path) -> DictConfig:
    """conf/evaluate.yaml composed with ``overrides``, Hydra's runtime values set as in a real run."""
    return compose_app("evaluate", overrides, output_dir)
