"""SFT examples from the shapes world: each scene gives two examples drawn from a task mixture.

Captions teach description (scored by CHAIR/Cover); existence questions ("is there a red circle in
the image ?") teach the yes/no answering that POPE probes; attribute, count and spatial questions
add grounding signal. ``existence_answer=describe_first`` writes a faithful caption before the yes/no word, so
the answer could be read off the model's own description instead of the image (docs/foundation.md measures it:
the captions improve, the answer stays at chance). Everything is a function of (world_seed, split, index), so
any example can be regenerated exactly, in any process.
"""

from __future__ import annotations

import random
from functools import cached_property

from torch.utils.data import Dataset

from vlmalign.data.encoding import EncodedExample, SequenceEncoder
from vlmalign.data.shapes import CAPTION_PROMPTS, Scene, describe, generate_scenes, questions, render_scene

OTHER_QUESTIONS = ("attribute", "count", "spatial")
EXISTENCE_ANSWERS = ("direct", "describe_first")


class ShapesSFTDataset(Dataset):
    def __init__(
        self,
        encoder: SequenceEncoder,
        split: str,
        num_scenes: int,
        world_seed: int,
        min_objects: int,
        max_objects: int,
        image_size: int,
        caption_fraction: float = 0.75,
        existence_fraction: float = 0.25,
        existence_answer: str = "direct",
    ) -> None:
        if not (0 <= caption_fraction and 0 <= existence_fraction and caption_fraction + existence_fraction <= 1):
            raise ValueError(f"caption_fraction={caption_fraction} and existence_fraction={existence_fraction} "
                             "must be >= 0 and sum to at most 1 (the rest are other questions)")
        if existence_answer not in EXISTENCE_ANSWERS:
            raise ValueError(f"existence_answer={existence_answer!r} is not one of {EXISTENCE_ANSWERS}")
        self.caption_fraction, self.existence_fraction = caption_fraction, existence_fraction
        self.existence_answer = existence_answer
        self.encoder = encoder
        self.split = split
        self.num_scenes = num_scenes
        self.world_seed = world_seed
        self.min_objects, self.max_objects = min_objects, max_objects
        self.image_size = image_size

    @cached_property
    def scenes(self) -> list[Scene]:
        return generate_scenes(self.split, self.num_scenes, self.world_seed, self.min_objects, self.max_objects)

    def __len__(self) -> int:
        return 2 * self.num_scenes

    def text_for(self, index: int) -> tuple[Scene, str, str]:
        """(scene, prompt, response) of example ``index``, the task drawn from the mixture."""
        scene = self.scenes[index // 2]
        rng = random.Random(f"{self.world_seed}:{self.split}:sft:{index}")
        draw = rng.random()
        if draw < self.caption_fraction:
            return scene, rng.choice(CAPTION_PROMPTS), describe(scene, rng)
        kinds = ("existence",) if draw < self.caption_fraction + self.existence_fraction else OTHER_QUESTIONS
        kind, question, answer = rng.choice(questions(scene, rng, kinds))
        if kind == "existence" and self.existence_answer == "describe_first":
            answer = f"{describe(scene, rng)} {answer} ."
        return scene, question, answer

    def text_length(self, index: int) -> int:
        _, prompt, response = self.text_for(index)
        return self.encoder.text_length(prompt, [response])

    def __getitem__(self, index: int) -> EncodedExample:
        scene, prompt, response = self.text_for(index)
        image = render_scene(scene, self.image_size)
        return self.encoder.encode(f"{scene.image_id}#{index % 2}", image, prompt, {"chosen": response})
