"""A shuffling sampler that can start anywhere in its stream, so a resumed run sees exactly the
batches an uninterrupted one would (issue: exact resume after SIGKILL).

It reproduces ``DataLoader(shuffle=True, generator=torch.Generator().manual_seed(seed))`` as Lightning
consumes it, draw for draw: each epoch the loader takes one 64-bit draw from its generator (its
workers' base seed) and the sampler one ``randperm``. When the sampler is exhausted, ``RandomSampler``
draws a second ``randperm`` for its (empty) remainder. Lightning stops after ``len(loader)`` batches,
so that happened only when the last batch is partial (``num_samples % batch_size != 0``): then the
batch sampler has to exhaust the sampler to yield it. Runs made before resume support keep their
data order, and so their results, bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Sampler

from vlmalign.data.length_grouping import group_by_length


class ResumableShuffleSampler(Sampler[int]):
    """``lengths`` (one per sample): group each epoch's shuffled order by length (``data.group_by_length``,
    ``vlmalign.data.length_grouping``); the draws, and so a resumed run's order, are the same either way."""

    def __init__(self, num_samples: int, seed: int, batch_size: int = 1, lengths: list[int] | None = None) -> None:
        if lengths is not None and len(lengths) != num_samples:
            raise ValueError(f"{len(lengths)} lengths for {num_samples} samples")
        self.num_samples, self.seed, self.batch_size, self.lengths = num_samples, seed, batch_size, lengths
        self.remainder_draw = num_samples % batch_size != 0
        self.epoch, self.skip = 0, 0

    def start_at(self, epoch: int, skip: int) -> None:
        """The next ``iter()`` yields epoch ``epoch``'s order without its first ``skip`` indices."""
        if not 0 <= skip <= self.num_samples:
            raise ValueError(f"skip={skip} is outside an epoch of {self.num_samples} samples")
        self.epoch, self.skip = epoch, skip

    def order(self, epoch: int) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed)
        for _ in range(epoch + 1):
            torch.empty((), dtype=torch.int64).random_(generator=generator)  # the loader's base-seed draw
            permutation = torch.randperm(self.num_samples, generator=generator)
            if self.remainder_draw:
                torch.randperm(self.num_samples, generator=generator)
        if self.lengths is not None:
            return group_by_length(permutation.tolist(), self.lengths, self.batch_size)
        return permutation.tolist()

    def __iter__(self) -> Iterator[int]:
        indices = self.order(self.epoch)[self.skip:]
        self.epoch, self.skip = self.epoch + 1, 0  # each iter() is one epoch
        return iter(indices)

    def __len__(self) -> int:
        return self.num_samples


class ResumableDataLoader(DataLoader):
    """A DataLoader whose position comes from the trainer's restored step counter (see
    ``ShapesDataModule.train_dataloader``), not from its own state: Lightning prefetches one batch
    ahead, so a loader's count of yielded batches is one past what a checkpoint has trained on.

    ``state_dict``/``load_state_dict`` exist so Lightning knows the loader resumes mid-epoch (it
    warns otherwise); they carry nothing because there is nothing to restore beyond the step.
    """

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        return None
