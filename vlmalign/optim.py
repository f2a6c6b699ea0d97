"""Optimizer and scheduler factories from config, checked before training starts."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from vlmalign.errors import ConfigError
from vlmalign.utils.instantiate import build


def build_optimizer_factory(node: DictConfig):
    """The ``_partial_`` optimizer, probed on a dummy parameter so a bad value fails now, by name."""
    factory = build(node, "optimizer")
    try:
        factory([torch.nn.Parameter(torch.zeros(1))])
    except (TypeError, ValueError) as error:
        raise ConfigError(f"optimizer ({node.get('_target_')}): {error}; check optimizer.* values") from error
    return factory
