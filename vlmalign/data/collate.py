"""Collate encoded examples into the multi-view batch the AlignmentModule consumes.

Batch layout::

    {"pixel_values": (N_images, C, H, W),          # each distinct image once
     "sample_ids": [...],
     "views": {view: {"input_ids", "attention_mask", "labels": (B, T), "image_index": (B,)}}}

Every view is padded to one common length so the module can run all views in one concatenated
forward; ``image_index`` says which row of ``pixel_values`` each sequence's image placeholders use,
so chosen and rejected point at the same image and it is encoded once.
"""

from __future__ import annotations

import torch

from vlmalign.data.encoding import EncodedExample, pad_sequences
from vlmalign.errors import ConfigError
from vlmalign.models.logprobs import IGNORE_INDEX

# view name → which response text it scores (views on corrupted images are added by the preference issue)
VIEW_RESPONSES = {"chosen": "chosen", "rejected": "rejected"}


class MultiViewCollator:
    def __init__(self, pad_token_id: int, views: tuple[str, ...] = ("chosen",)) -> None:
        unknown = [v for v in views if v not in VIEW_RESPONSES]
        if unknown:
            raise ConfigError(f"views {unknown} are not supported by this dataset; known: {sorted(VIEW_RESPONSES)}")
        self.pad_token_id = pad_token_id
        self.views = tuple(views)

    def __call__(self, examples: list[EncodedExample]) -> dict:
        sequences, labels, owners = [], [], []
        for view in self.views:
            key = VIEW_RESPONSES[view]
            for row, ex in enumerate(examples):
                response = ex.responses[key]
                sequences.append(ex.prompt_ids + response)
                labels.append([IGNORE_INDEX] * len(ex.prompt_ids) + response)
                owners.append((view, row))
        input_ids, attention_mask = pad_sequences(sequences, self.pad_token_id)
        label_tensor, _ = pad_sequences(labels, IGNORE_INDEX)
        batch_size = len(examples)
        views = {}
        for index, view in enumerate(self.views):
            rows = slice(index * batch_size, (index + 1) * batch_size)
            views[view] = {
                "input_ids": input_ids[rows],
                "attention_mask": attention_mask[rows],
                "labels": label_tensor[rows],
                "image_index": torch.arange(batch_size),
            }
        return {
            "pixel_values": torch.stack([ex.pixel_values for ex in examples]),
            "sample_ids": [ex.sample_id for ex in examples],
            "views": views,
        }
