"""What every vlmalign datamodule shares: resumable train/val loaders over a train and a val dataset, the
collator, encode-once, and the description the precomputed reference cache fingerprints.

A subclass sets ``train_set``, ``val_set``, ``collator``, ``batch_size``, ``num_workers``, ``shuffle_seed``
and ``_description`` in its ``__init__`` (``ShapesDataModule``, ``FileDataModule``), and ``group_by_length``
when its config asks for it.
"""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from vlmalign.data.encoded_once import EncodedOnce
from vlmalign.data.label_noise import FlippedPairs
from vlmalign.data.length_grouping import example_lengths
from vlmalign.data.sampling import ResumableDataLoader, ResumableShuffleSampler


class SplitDataModule(pl.LightningDataModule):
    group_by_length = False  # batch examples of similar length together (vlmalign.data.length_grouping)
    _train_lengths: tuple | None = None  # (the train set they were computed for, its lengths)

    def encode_once(self) -> None:
        """Memoise the train and val examples (``vlmalign.data.encoded_once``); call after the splits are final."""
        self.train_set, self.val_set = EncodedOnce(self.train_set), EncodedOnce(self.val_set)

    def flip_train_pairs(self, fraction: float, seed: int = 0) -> None:
        """Mislabel exactly round(fraction · N) of the N training pairs (``vlmalign.data.label_noise``: reward-label
        noise for a reward model); validation pairs stay true. Call before ``encode_once``."""
        if fraction:
            self.train_set = FlippedPairs(self.train_set, fraction, seed)
            self._description = {**self._description, "label_noise": {"fraction": fraction, "seed": seed}}

    def identity(self) -> dict:
        """Everything that fixes the examples' texts and images (reference-cache fingerprint)."""
        return dict(self._description)

    def reference_datasets(self) -> list:
        """The datasets whose reference log-probs a precomputed cache must hold."""
        return [self.train_set, self.val_set]

    def _loader(self, dataset, sampler=None) -> DataLoader:
        return ResumableDataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            generator=torch.Generator().manual_seed(self.shuffle_seed),  # workers' base seeds only
            collate_fn=self.collator,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled; on a resumed fit it starts at the first batch the checkpoint had not trained on."""
        sampler = ResumableShuffleSampler(len(self.train_set), self.shuffle_seed, self.batch_size,
                                          self.train_lengths() if self.group_by_length else None)
        consumed = consumed_train_batches(self.trainer) if self.trainer is not None else 0
        epoch, batch = divmod(consumed, math.ceil(len(self.train_set) / self.batch_size))
        sampler.start_at(epoch, batch * self.batch_size)
        return self._loader(self.train_set, sampler)

    def train_lengths(self) -> list[int]:
        """One length per train example, computed once per train set (encode-once or on-policy pairs replace it)."""
        if self._train_lengths is None or self._train_lengths[0] is not self.train_set:
            self._train_lengths = (self.train_set, example_lengths(self.train_set))
        return self._train_lengths[1]

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set)


def consumed_train_batches(trainer: pl.Trainer) -> int:
    """Training batches a (possibly restored) trainer has used: one per optimizer step and accumulation
    micro-batch. Lightning restores its loop counters before it asks for the dataloader, so this is
    the checkpoint's position on resume and 0 on a fresh fit."""
    return trainer.global_step * trainer.accumulate_grad_batches
