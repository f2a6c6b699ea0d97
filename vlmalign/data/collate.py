"""Collate encoded examples into the multi-view batch the AlignmentModule consumes.

Batch layout::

    {"pixel_values": (N_images, C, H, W),          # each distinct image once
     "sample_ids": [...],
     "views": {view: {"input_ids", "attention_mask", "labels": (B, T), "image_index": (B,),
                      "prompt_length": (B,)}}}             # response views only, not dialogues

Every view is padded to one common length so the module can run all views in one concatenated
forward; ``image_index`` says which row of ``pixel_values`` each sequence's image placeholders use,
so chosen and rejected point at the same image and it is encoded once. ``prompt_length`` (image
placeholders included) marks where a response view's own tokens start, so the module can run the
shared image + prompt prefix once for all views of a sample (``vlmalign.models.prefix_sharing``).

A view is either a response to the sample's prompt (chosen, rejected, ...) or a dialogue that
carries its own sequence and labels (``negatives``: nSFT's corrective turns, arXiv 2411.14797).
Every view has one row per sample; a sample with an empty dialogue has a row with no labelled
token, which adds nothing to token-mean losses.

Models whose processor does not give one (C, H, W) tensor per image (Qwen2-VL's patch lists, Idefics3's
crops) carry a ``pixel_layout`` on their examples: ``pixel_values`` is then batched the way that model
expects and the batch gains ``"image_inputs"`` (``image_grid_thw``, ``pixel_attention_mask``), which the
backbone passes to the vision tower; the corruption m' is applied to each image mapped back to (C, H, W)
(``vlmalign.models.image_inputs``).
"""

from __future__ import annotations

import torch

from vlmalign.data.corruptions import ImageCorruption, sample_generator
from vlmalign.data.encoding import EncodedExample, pad_sequences
from vlmalign.errors import ConfigError
from vlmalign.models.logprobs import IGNORE_INDEX

# view name → (response or dialogue it scores, whether its image is the corrupted m'). A view not listed is the
# example's response or dialogue of the same name on the real image (``view_source``): the objective names the
# views it needs and the examples carry them (KTO's unpaired views, vlmalign.data.unpaired), with no entry here.
VIEWS = {"chosen": ("chosen", False), "rejected": ("rejected", False), "chosen_corrupted": ("chosen", True),
         "rejected_corrupted": ("rejected", True), "negatives": ("negatives", False)}


def view_source(view: str) -> tuple[str, bool]:
    return VIEWS.get(view, (view, False))


class MultiViewCollator:
    def __init__(
        self,
        pad_token_id: int,
        views: tuple[str, ...] = ("chosen",),
        corruption: ImageCorruption | None = None,
        corruption_seed: int = 0,
    ) -> None:
        self.needs_corruption = any(view_source(v)[1] for v in views)
        if self.needs_corruption and corruption is None:
            raise ConfigError(f"the objective needs corrupted-image views {list(views)} but data.corruption is null")
        self.pad_token_id = pad_token_id
        self.views = tuple(views)
        self.corruption, self.corruption_seed = corruption, corruption_seed

    def corrupt(self, pixels: torch.Tensor, sample_ids: list[str]) -> torch.Tensor:
        """m' for each sample, a pure function of (corruption seed, sample id, pixels)."""
        return self.corruption(pixels, [sample_generator(self.corruption_seed, s) for s in sample_ids])

    def __call__(self, examples: list[EncodedExample]) -> dict:
        sequences, labels = [], []
        for view in self.views:
            key = view_source(view)[0]
            for ex in examples:
                ids, view_labels = ex.tokens(key)
                sequences.append(ids)
                labels.append(view_labels)
        input_ids, attention_mask = pad_sequences(sequences, self.pad_token_id)
        label_tensor, _ = pad_sequences(labels, IGNORE_INDEX)
        batch_size = len(examples)
        sample_ids = [ex.sample_id for ex in examples]
        image_inputs: dict = {}
        if examples[0].pixel_layout is None:  # one (C, H, W) tensor per image
            pixel_values = torch.stack([ex.pixel_values for ex in examples])
            if self.needs_corruption:  # corrupted images follow the real ones; each is encoded once
                pixel_values = torch.cat([pixel_values, self.corrupt(pixel_values, sample_ids)])
        else:
            pixel_values, image_inputs = self.collate_images(examples)
        views = {}
        for index, view in enumerate(self.views):
            rows = slice(index * batch_size, (index + 1) * batch_size)
            views[view] = {
                "input_ids": input_ids[rows],
                "attention_mask": attention_mask[rows],
                "labels": label_tensor[rows],
                "image_index": torch.arange(batch_size) + (batch_size if view_source(view)[1] else 0),
            }
            key = view_source(view)[0]
            if all(key in ex.responses and key not in ex.dialogues for ex in examples):  # a response, not a dialogue
                views[view]["prompt_length"] = torch.tensor([len(ex.prompt_ids) for ex in examples])
        batch = {"pixel_values": pixel_values, "sample_ids": sample_ids, "views": views}
        if image_inputs:
            batch["image_inputs"] = image_inputs
        return batch

    def collate_images(self, examples: list[EncodedExample]) -> tuple[torch.Tensor, dict]:
        """Pixels (and extra image tensors) of a non-(C, H, W) layout, corrupted images after the real ones."""
        layout = examples[0].pixel_layout
        pixels = [ex.pixel_values for ex in examples]
        extras = [ex.image_inputs for ex in examples]
        if self.needs_corruption:
            images = [layout.to_image(p, e) for p, e in zip(pixels, extras)]
            generators = [sample_generator(self.corruption_seed, ex.sample_id) for ex in examples]
            for image, extra in zip(self.corruption.apply_each(images, generators), extras):
                corrupted, corrupted_extra = layout.from_image(image, extra)
                pixels.append(corrupted)
                extras.append(corrupted_extra)
        return layout.collate(pixels, extras)
