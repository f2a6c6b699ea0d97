"""Experts for the merge tests: copies of the tiny fixture LLaVA (tests/conftest.py) with small seeded changes to
every weight, as branches of one seed are after a little training."""

from __future__ import annotations

import pytest
import torch


def save(model, processor, path):
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return str(path)


def perturbed(model, seed: int, scale: float = 0.02):
    """A copy of ``model`` with every floating-point weight moved by N(0, scale²)·|w|-free noise (seeded)."""
    copy = type(model)(model.config)
    copy.load_state_dict(model.state_dict())
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in copy.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * scale)
    copy.generation_config = model.generation_config
    return copy.eval()


@pytest.fixture(scope="session")
def seed_dir(tiny_checkpoint):
    return str(tiny_checkpoint)


@pytest.fixture(scope="session")
def expert_dirs(tiny_parts, tmp_path_factory):
    model, processor = tiny_parts
    root = tmp_path_factory.mktemp("btx_experts")
    return [save(perturbed(model, seed), processor, root / f"expert{seed}") for seed in (1, 2, 3)]
