"""The resumable sampler reproduces the old shuffled loader exactly as Lightning consumed it."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.utils.data import DataLoader

from vlmalign.data.sampling import ResumableDataLoader, ResumableShuffleSampler


def _epochs_as_lightning_reads_them(loader, epochs: int) -> list[list[int]]:
    """Lightning takes ``len(loader)`` batches per epoch from a fresh iterator and never asks for more."""
    return [[int(i) for batch in itertools.islice(iter(loader), len(loader)) for i in batch] for _ in range(epochs)]


@pytest.mark.parametrize(("n", "seed", "batch_size"), [(12, 0, 4), (37, 3, 5), (5, 1, 16)])
def test_same_order_as_the_shuffled_loader_runs_were_trained_with(n, seed, batch_size):
    old = DataLoader(list(range(n)), batch_size=batch_size, shuffle=True,
                     generator=torch.Generator().manual_seed(seed))
    sampler = ResumableShuffleSampler(n, seed, batch_size)
    new = ResumableDataLoader(list(range(n)), batch_size=batch_size, sampler=sampler,
                              generator=torch.Generator().manual_seed(seed))
    assert _epochs_as_lightning_reads_them(new, 3) == _epochs_as_lightning_reads_them(old, 3)


def test_start_at_resumes_inside_an_epoch_and_then_continues_with_the_next():
    full = ResumableShuffleSampler(10, seed=7)
    epochs = [list(full) for _ in range(3)]
    resumed = ResumableShuffleSampler(10, seed=7)
    resumed.start_at(epoch=1, skip=4)
    assert list(resumed) == epochs[1][4:] and list(resumed) == epochs[2]
    with pytest.raises(ValueError, match="outside an epoch"):
        resumed.start_at(0, 11)
