"""Unpaired (KTO) examples from the shapes world: each scene's faithful caption (desirable) or the same
caption with an injected error (undesirable), from the preference pairs of ``shapes_preference``.

One example per scene; ``desirable_fraction`` is the class balance, each scene's label a seeded draw, so the
labels are a pure function of (world, split, index). The ``mismatched`` response of scene i is scene i+1's.
"""

from __future__ import annotations

import random

from torch.utils.data import Dataset

from vlmalign.data.encoding import EncodedExample
from vlmalign.data.shapes import Scene, render_scene
from vlmalign.data.shapes_preference import ShapesPreferenceDataset
from vlmalign.data.unpaired import check_both_classes, mismatched_index, unpaired_example
from vlmalign.errors import ConfigError


class ShapesUnpairedDataset(Dataset):
    def __init__(self, pairs: ShapesPreferenceDataset, desirable_fraction: float = 0.5) -> None:
        if not 0 < desirable_fraction < 1:
            raise ConfigError(f"data.desirable_fraction={desirable_fraction} must be in (0, 1): unpaired (KTO) data "
                              "needs desirable and undesirable examples")
        self.pairs, self.desirable_fraction = pairs, float(desirable_fraction)
        world, split = pairs.world, pairs.split
        self.labels = [random.Random(f"{world.seed}:{split}:unpaired:{i}").random() < desirable_fraction
                       for i in range(len(pairs))]
        check_both_classes(self.labels, f"the shapes {split} split ({len(pairs)} scenes)")

    def __len__(self) -> int:
        return len(self.pairs)

    def completion(self, index: int) -> str:
        _, pair = self.pairs.pair_for(index)
        return pair.chosen if self.labels[index] else pair.rejected

    def text_length(self, index: int) -> int:
        _, pair = self.pairs.pair_for(index)
        other = self.completion(mismatched_index(index, len(self)))
        return self.pairs.encoder.text_length(pair.prompt, [self.completion(index), other])

    def __getitem__(self, index: int) -> EncodedExample:
        scene, pair = self.pairs.pair_for(index)
        shown = Scene(scene.image_id, ()) if self.pairs.blank_images else scene
        image = render_scene(shown, self.pairs.world.image_size)
        other = self.completion(mismatched_index(index, len(self)))
        return unpaired_example(self.pairs.encoder, scene.image_id, image, pair.prompt, self.completion(index),
                                self.labels[index], other, {"errors": () if self.labels[index] else pair.errors})
