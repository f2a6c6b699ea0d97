"""Preference examples from the shapes world: one (chosen, rejected) caption pair per scene.

Pair kinds (``pair_kind``; docs/foundation.md measures each with a text-only model):

- ``injected``: rejected = the chosen caption with injected errors of ``error_mix``; ``plausibility`` decides
  how often they also leave a tell in the text (shapes/preference.py);
- ``text_detectable``: the same with every error leaving a tell (plausibility 0): text alone exposes the
  rejected answer, mDPO's unconditional-preference setting;
- ``image_only``: one object swapped for a draw from the world's own posterior, exchangeable with the chosen
  caption as text (shapes/prior_pairs.py): only the image decides;
- ``onpolicy``: the starting policy's own captions, corrected against the scene (the datamodule builds them).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from functools import cached_property

from torch.utils.data import Dataset

from vlmalign.data.encoding import EncodedExample, SequenceEncoder
from vlmalign.data.shapes import Scene, WorldSpec, render_scene
from vlmalign.data.shapes.preference import make_preference_pair
from vlmalign.data.shapes.prior_pairs import image_only_pair
from vlmalign.data.shapes_sft import ShapesSFTDataset

PAIR_KINDS = ("injected", "text_detectable", "image_only", "onpolicy")


class ShapesPreferenceDataset(ShapesSFTDataset):
    """Scene i → a faithful caption (chosen) and the same caption with injected errors (rejected)."""

    def __init__(
        self,
        encoder: SequenceEncoder,
        split: str,
        num_scenes: int,
        world: WorldSpec,
        error_mix: Mapping[str, float] | None = None,
        plausibility: float = 1.0,
        num_errors: int = 1,
        pair_kind: str = "injected",
        blank_images: bool = False,
    ) -> None:
        super().__init__(encoder, split, num_scenes, world)
        if pair_kind not in PAIR_KINDS:
            raise ValueError(f"pair_kind={pair_kind!r} is not one of {PAIR_KINDS}")
        self.error_mix = dict(error_mix) if error_mix else None
        self.plausibility, self.num_errors, self.pair_kind = plausibility, num_errors, pair_kind
        self.blank_images = blank_images  # the text-only control: every image an empty canvas

    @cached_property
    def _image_only_pairs(self) -> list:
        return [image_only_pair(self.world, self.split, i) for i in range(self.num_scenes)]

    @cached_property
    def scenes(self) -> list[Scene]:
        if self.pair_kind == "image_only":  # the chosen scenes the pairs were drawn with
            return [scene for scene, _ in self._image_only_pairs]
        return super().scenes

    def __len__(self) -> int:
        return self.num_scenes

    def pair_for(self, index: int):
        if self.pair_kind == "image_only":
            return self._image_only_pairs[index]
        scene = self.scenes[index]
        rng = random.Random(f"{self.world.seed}:{self.split}:pref:{index}")
        plausibility = 0.0 if self.pair_kind == "text_detectable" else self.plausibility
        return scene, make_preference_pair(scene, rng, self.error_mix, plausibility, self.num_errors)

    def text_length(self, index: int) -> int:
        _, pair = self.pair_for(index)
        return self.encoder.text_length(pair.prompt, [pair.chosen, pair.rejected])

    def __getitem__(self, index: int) -> EncodedExample:
        scene, pair = self.pair_for(index)
        image = render_scene(Scene(scene.image_id, ()) if self.blank_images else scene, self.world.image_size)
        responses = {"chosen": pair.chosen, "rejected": pair.rejected}
        return self.encoder.encode(scene.image_id, image, pair.prompt, responses, {"errors": pair.errors})


class PolicyCaptionPairs(Dataset):
    """Pairs from ``vlmalign.data.onpolicy_pairs``: scene ``index`` of ``scenes`` with its prompt, the
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
        image = render_scene(scene, self.source.world.image_size)
        responses = {"chosen": pair["chosen"], "rejected": pair["rejected"]}
        return self.source.encoder.encode(scene.image_id, image, pair["prompt"], responses, {"errors": ("shape",)})
