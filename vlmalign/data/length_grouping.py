"""Group examples of similar length into the same batch, to cut padding (``data.group_by_length``).

A batch is padded to its longest row, so a shuffled batch of preference pairs whose packed rows run from 93
to 135 tokens spends 15% of its language-model positions on padding (23% for mDPO, measured on the shapes
pairs; docs/performance.md). This is Hugging Face's ``group_by_length``: the shuffled order is cut into
mega-batches of 50 batches (fewer for small datasets, so there are at least 4) and each is sorted by length,
longest first, so consecutive batches (and, under a distributed sampler, consecutive global batches) hold
examples of similar length, while which examples meet still changes every epoch.
``transformers.trainer_pt_utils.get_length_grouped_indices`` does the same but draws its own permutation;
grouping the resumable sampler's permutation instead keeps a resumed run's order exact
(``vlmalign.data.sampling``).

It changes which pairs share a batch, so the numbers of a run change too (it is a data option, part of the
run's identity, not a performance lever that gives the same losses).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch.utils.data import Dataset

MEGABATCH_BATCHES = 50  # transformers' default mega-batch


def megabatch_batches(num_examples: int, batch_size: int) -> int:
    """transformers' choice: 50 batches, or as many as give 4 mega-batches when that is fewer (at least 1)."""
    return max(1, min(num_examples // (4 * batch_size), MEGABATCH_BATCHES))


def group_by_length(order: Sequence[int], lengths: Sequence[int], batch_size: int) -> list[int]:
    """``order`` with each mega-batch (``megabatch_batches`` batches of consecutive indices) sorted by length,
    longest first (stable, so equal lengths keep their shuffled order)."""
    size = megabatch_batches(len(order), batch_size) * batch_size
    grouped: list[int] = []
    for start in range(0, len(order), size):
        grouped += sorted(order[start:start + size], key=lambda index: -lengths[index])
    return grouped


def example_lengths(dataset: Dataset) -> list[int]:
    """A length for every example, to group by: the dataset's ``text_length(i)`` when it has one (text tokens of
    the prompt and every response, no image decoded: cheap), else the encoded example's tokens (prompt, image
    placeholders included, plus every response and dialogue)."""
    text_length = getattr(dataset, "text_length", None)
    if text_length is not None:
        return [text_length(index) for index in range(len(dataset))]
    lengths = []
    for index in range(len(dataset)):
        example = dataset[index]
        lengths.append(len(example.prompt_ids) + sum(map(len, example.responses.values()))
                       + sum(len(d.input_ids) for d in example.dialogues.values()))
    return lengths
