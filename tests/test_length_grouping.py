"""data.group_by_length: batches of similar length, same examples, resumable, and less padding on shapes pairs."""

from __future__ import annotations

import random

import pytest
import torch
from torch.utils.data import Subset

from vlmalign.data.corruptions import RandomResizedCrop
from vlmalign.data.datamodule import ShapesDataModule
from vlmalign.data.length_grouping import example_lengths, group_by_length, megabatch_batches
from vlmalign.data.sampling import ResumableShuffleSampler
from vlmalign.models import load_backbone
from vlmalign.models.views import packed_views, view_states

VIEWS = ("chosen", "rejected")


def test_each_megabatch_is_sorted_longest_first_and_nothing_is_lost():
    rng = random.Random(0)
    lengths = [rng.randrange(5, 50) for _ in range(403)]
    order = list(range(403))
    rng.shuffle(order)
    grouped = group_by_length(order, lengths, batch_size=4)
    size = megabatch_batches(403, 4) * 4
    assert megabatch_batches(403, 4) == 25 and megabatch_batches(10_000, 4) == 50 and megabatch_batches(3, 4) == 1
    assert sorted(grouped) == sorted(order)
    for start in range(0, 403, size):
        chunk = grouped[start:start + size]
        assert set(chunk) == set(order[start:start + size])  # examples only move inside their mega-batch
        assert [lengths[i] for i in chunk] == sorted((lengths[i] for i in chunk), reverse=True)


def test_the_grouped_sampler_draws_like_the_shuffled_one_and_resumes_exactly():
    lengths = [(7 * i) % 13 for i in range(40)]
    plain = ResumableShuffleSampler(40, seed=3, batch_size=4)
    grouped = ResumableShuffleSampler(40, seed=3, batch_size=4, lengths=lengths)
    for epoch in range(2):  # the same shuffled examples in each mega-batch, then sorted
        assert grouped.order(epoch) == group_by_length(plain.order(epoch), lengths, 4)
    assert grouped.order(0) != grouped.order(1)  # who meets whom still changes every epoch
    full = [list(grouped) for _ in range(2)]
    resumed = ResumableShuffleSampler(40, seed=3, batch_size=4, lengths=lengths)
    resumed.start_at(epoch=1, skip=8)
    assert list(resumed) == full[1][8:]
    with pytest.raises(ValueError, match="3 lengths for 40 samples"):
        ResumableShuffleSampler(40, seed=3, lengths=[1, 2, 3])


def _datamodule(processor, **overrides):
    settings = dict(views=(*VIEWS, "chosen_corrupted"), task="preference", num_train_scenes=48, num_val_scenes=2,
                    world={"image_size": 32}, max_length=120, batch_size=4, error_mix={"existence": 1.0},
                    corruption=RandomResizedCrop())
    return ShapesDataModule(processor, **{**settings, **overrides})


def _padding(loader) -> tuple[int, int]:
    padded = real = 0
    for batch in loader:
        mask = torch.cat([batch["views"][v]["attention_mask"] for v in VIEWS])
        padded, real = padded + mask.numel(), real + int(mask.sum())
    return padded, real


@pytest.mark.parametrize("task", ["sft", "preference", "nsft"])
def test_text_lengths_rank_examples_like_their_encoded_lengths(tiny_parts, task):
    _, processor = tiny_parts
    views = {"sft": ("chosen",), "preference": (*VIEWS, "chosen_corrupted"), "nsft": ("chosen", "negatives")}[task]
    dataset = _datamodule(processor, task=task, views=views).train_set
    text = example_lengths(dataset)  # the dataset's text_length: no image is rendered or processed
    encoded = example_lengths(Subset(dataset, range(len(dataset))))  # no text_length: every example encoded
    assert len(set(text)) > 3
    if task != "nsft":  # image span and chat template: the same tokens for every one-turn example
        assert len({e - t for e, t in zip(encoded, text)}) == 1
    assert torch.corrcoef(torch.tensor([text, encoded], dtype=torch.float))[0, 1] > 0.95


def test_grouped_batches_hold_the_same_examples_with_less_padding(tiny_parts):
    _, processor = tiny_parts
    shuffled, grouped = _datamodule(processor), _datamodule(processor, group_by_length=True)
    ids = [sorted(i for b in dm.train_dataloader() for i in b["sample_ids"]) for dm in (shuffled, grouped)]
    assert ids[0] == ids[1]
    (padded, real), (grouped_padded, grouped_real) = _padding(shuffled.train_dataloader()), \
        _padding(grouped.train_dataloader())
    assert grouped_real == real and grouped_padded < padded
    assert [b["sample_ids"] for b in grouped.train_dataloader()] == \
        [b["sample_ids"] for b in _datamodule(processor, group_by_length=True).train_dataloader()]  # deterministic


def test_policy_and_reference_share_one_packing_per_batch(tiny_checkpoint):
    backbone = load_backbone(str(tiny_checkpoint))
    batch = next(iter(_datamodule(backbone.processor).train_dataloader()))
    first = view_states(backbone, batch, VIEWS)
    rows = {key: torch.cat([batch["views"][v][key] for v in VIEWS])
            for key in ("input_ids", "attention_mask", "labels", "image_index")}
    packed = packed_views(batch, VIEWS, rows, backbone.pad_token_id)
    assert packed_views(batch, VIEWS, rows, backbone.pad_token_id) is packed
    assert packed.attention_mask(torch.float32) is packed.attention_mask(torch.float32)
    again = view_states(backbone, batch, VIEWS)  # from the memo: the same states
    for view in VIEWS:
        torch.testing.assert_close(again[view].rows, first[view].rows, rtol=0, atol=0)
