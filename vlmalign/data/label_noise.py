"""Reward-label noise: a dataset of preference pairs with an exact fraction of them flipped (chosen ↔ rejected).

The contrastive-rewards paper (arXiv 2403.07708) claims robustness to a noisy reward model; the study makes the
noise by training the reward model on pairs of which a known fraction is mislabelled. "A fraction p" means exactly
round(p · N) of the N training pairs, chosen by a seeded permutation, so two runs at the same p and seed flip the
same pairs and runs at different p differ only in how many (the flipped set at a lower p is a subset).
"""

from __future__ import annotations

import dataclasses

import torch
from torch.utils.data import Dataset

from vlmalign.data.encoding import EncodedExample
from vlmalign.errors import ConfigError


def flipped_indices(num_pairs: int, fraction: float, seed: int = 0) -> frozenset[int]:
    """The round(fraction · num_pairs) pair indices to flip: a prefix of one seeded permutation of the pairs."""
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"label_noise={fraction} must be a fraction of the training pairs in [0, 1]")
    order = torch.randperm(num_pairs, generator=torch.Generator().manual_seed(seed))
    return frozenset(order[: round(fraction * num_pairs)].tolist())


class FlippedPairs(Dataset):
    """``dataset[i]`` with its chosen and rejected responses swapped for i in ``flipped_indices``; the example's
    ``meta["label_flipped"]`` says which (the truth stays recoverable for analysis)."""

    def __init__(self, dataset: Dataset, fraction: float, seed: int = 0) -> None:
        self.dataset = dataset
        self.flipped = flipped_indices(len(dataset), fraction, seed)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> EncodedExample:
        example = self.dataset[index]
        flip = index in self.flipped
        responses = dict(example.responses)
        if flip:
            responses["chosen"], responses["rejected"] = example.responses["rejected"], example.responses["chosen"]
        return dataclasses.replace(example, responses=responses, meta={**example.meta, "label_flipped": flip})

    def __getattr__(self, name: str):
        if name == "dataset":  # never recurse while unpickling in a loader worker
            raise AttributeError(name)
        return getattr(self.dataset, name)
