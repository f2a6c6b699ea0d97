"""Where a round's instructions come from: an image, a prompt and (on the shapes world) the scene.

RLAIF-V draws fresh instructions every round, so the policy is always labelled on prompts it has not
been trained on. ``ShapesInstructions`` gives round r the training scenes
[first_scene + r·per_round, first_scene + (r+1)·per_round), each with a caption prompt drawn by seed;
the non-iterative baseline asks for one round of K·per_round, the same scenes in one go.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from PIL import Image

from vlmalign.data.shapes import CAPTION_PROMPTS, Scene, WorldSpec, render_scene, world_spec


@dataclass(frozen=True)
class Instruction:
    id: str
    prompt: str
    image: Image.Image
    scene: Scene | None = None  # ground truth, when there is one (oracle labeler, exact scoring)


class ShapesInstructions:
    def __init__(self, per_round: int, split: str = "train", world: WorldSpec | dict | None = None,
                 first_scene: int = 0) -> None:
        if per_round < 1 or first_scene < 0:
            raise ValueError(f"instructions.per_round={per_round} must be >= 1 and first_scene={first_scene} >= 0")
        self.per_round, self.split = per_round, split
        self.world = world_spec(world or {}, "instructions.world")
        self.first_scene = first_scene

    def scene_range(self, round_index: int) -> range:
        start = self.first_scene + round_index * self.per_round
        return range(start, start + self.per_round)

    def for_round(self, round_index: int) -> list[Instruction]:
        wanted = self.scene_range(round_index)
        scenes = self.world.scenes(self.split, wanted.stop)
        out = []
        for i in wanted:
            scene = scenes[i]
            prompt = random.Random(f"{self.world.seed}:{self.split}:rlaifv:{i}").choice(CAPTION_PROMPTS)
            out.append(Instruction(scene.image_id, prompt, render_scene(scene, self.world.image_size), scene))
        return out

    def identity(self) -> dict:
        return {"source": "shapes", "split": self.split, "world": self.world.to_dict(), "per_round": self.per_round,
                "first_scene": self.first_scene}
