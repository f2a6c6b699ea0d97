"""Preference examples from the shapes world: one (chosen, rejected) caption pair per scene."""

from __future__ import annotations

import random
from collections.abc import Mapping

from torch.utils.data import Dataset

from vlmalign.data.encoding import EncodedExample, SequenceEncoder
from vlmalign.data.shapes import render_scene
from vlmalign.data.shapes.preference import make_preference_pair
from vlmalign.data.shapes_sft import ShapesSFTDataset


class ShapesPreferenceDataset(ShapesSFTDataset):
    """Scene i → a faithful caption (chosen) and the same caption with injected errors (rejected)."""

    def __init__(
        self,
        encoder: SequenceEncoder,
        split: str,
        num_scenes: int,
        world_seed: int,
        min_objects: int,
        max_objects: int,
        image_size: int,
        error_mix: Mapping[str, float] | None = None,
        plausibility: float = 1.0,
        num_errors: int = 1,
    ) -> None:
        super().__init__(encoder, split, num_scenes, world_seed, min_objects, max_objects, image_size)
        self.error_mix = dict(error_mix) if error_mix else None
        self.plausibility, self.num_errors = plausibility, num_errors

    def __len__(self) -> int:
        return self.num_scenes

    def pair_for(self, index: int):
        scene = self.scenes[index]
        rng = random.Random(f"{self.world_seed}:{self.split}:pref:{index}")
        return scene, make_preference_pair(scene, rng, self.error_mix, self.plausibility, self.num_errors)

    def text_length(self, index: int) -> int:
        _, pair = self.pair_for(index)
        return self.encoder.text_length(pair.prompt, [pair.chosen, pair.rejected])

    def __getitem__(self, index: int) -> EncodedExample:
        scene, pair = self.pair_for(index)
        image = render_scene(scene, self.image_size)
        responses = {"chosen": pair.chosen, "rejected": pair.rejected}
        return self.encoder.encode(scene.image_id, image, pair.prompt, responses, {"errors": pair.errors})


class PolicyCaptionPairs(Dataset):
    """Pairs from ``vlmalign.pipelines.onpolicy_pairs``: scene ``index`` of ``scenes`` with its prompt, the
    policy's own caption (rejected) and that caption with its shape errors corrected (chosen)."""

    def __init__(self, scenes: ShapesPreferenceDataset, pairs: list[dict]) -> None:
        self.source, self.pairs = scenes, pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def text_length(self, index: int) -> int:
        pair = self.pairs[index]
        return self.source.encoder.text_length(pair["prompt"], [pair["chosen"], pair["rejected"]])

    def __getitem__(self, index: int) -> EncodedExample:
        pair = self.pairs[index]
        scene = self.source.scenes[pair["index"]]
        image = render_scene(scene, self.source.image_size)
        responses = {"chosen": pair["chosen"], "rejected": pair["rejected"]}
        return self.source.encoder.encode(scene.image_id, image, pair["prompt"], responses, {"errors": ("shape",)})
