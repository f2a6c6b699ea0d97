"""Prompts for online RL on the shapes world (``data=shapes_prompts``): an image, a caption prompt and the scene
that scores the answer, with no response. The responses are the policy's own samples, drawn inside training
(``vlmalign.rl.rollout``).

``batch_size`` counts *responses* per optimizer step, as TRL's GRPO and RLOO trainers count completions: each
step draws ``batch_size / group_size`` prompts and ``group_size`` samples of each, so the group size must divide
the batch (a ConfigError otherwise, also raised by the config check before anything is built).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from PIL import Image
from torch.utils.data import Dataset

from vlmalign.data.shapes import CAPTION_PROMPTS, Scene, WorldSpec, render_scene, world_spec
from vlmalign.data.split_datamodule import SplitDataModule
from vlmalign.distributed.workarounds import OpaqueToLightning
from vlmalign.errors import ConfigError

PROMPT_VIEWS = ("rollout",)  # the view the online trainer builds from its samples


@dataclass(frozen=True)
class PromptRecord:
    """One prompt to sample responses for; ``scene`` is its exact ground truth (None for data without one)."""

    sample_id: str
    image: Image.Image
    prompt: str
    scene: Scene | None = None


def group_problem(batch_size, group_size, group_key: str = "data.group_size") -> str | None:
    """Why ``batch_size`` responses per step cannot be made of groups of ``group_size`` samples (None if they can);
    ``group_key`` names the group size's config key (it interpolates ``rollout.group_size``)."""
    if not isinstance(group_size, int) or group_size < 1:
        return f"{group_key}={group_size!r} must be an integer >= 1 (samples per prompt)"
    if not isinstance(batch_size, int) or batch_size < 1 or batch_size % group_size:
        return (f"data.batch_size={batch_size!r} responses per step is not a multiple of {group_key}={group_size} "
                "(samples per prompt): choose a batch size divisible by it")
    return None


class ShapesPromptDataset(Dataset):
    """Scene i of ``split`` rendered, with ``prompt``: a function of (world, split, i) only."""

    def __init__(self, split: str, num_scenes: int, world: WorldSpec, prompt: str) -> None:
        self.split, self.num_scenes, self.world, self.prompt = split, num_scenes, world, prompt

    @cached_property
    def scenes(self) -> list[Scene]:
        return self.world.scenes(self.split, self.num_scenes)

    def __len__(self) -> int:
        return self.num_scenes

    def __getitem__(self, index: int) -> PromptRecord:
        scene = self.scenes[index]
        return PromptRecord(scene.image_id, render_scene(scene, self.world.image_size), self.prompt, scene)


def collate_prompts(records: list[PromptRecord]) -> dict:
    """The collator: prompts stay records (the online trainer encodes them with its samples), in a holder that
    Lightning's precision plugins leave unopened (workaround 6: they refuse frozen dataclasses under DeepSpeed);
    ``sample_ids`` as every vlmalign batch has them (the NaN guard names them)."""
    return {"prompts": OpaqueToLightning(list(records)), "sample_ids": [r.sample_id for r in records]}


class ShapesPromptDataModule(SplitDataModule):
    def __init__(self, processor=None, views: tuple[str, ...] = PROMPT_VIEWS, batch_size: int = 16,
                 group_size: int = 4, num_train_scenes: int = 8000, num_val_scenes: int = 64,
                 world: WorldSpec | dict | None = None, prompt: str = CAPTION_PROMPTS[0], num_workers: int = 0,
                 shuffle_seed: int = 0) -> None:
        super().__init__()
        if tuple(views) != PROMPT_VIEWS:
            raise ConfigError(f"data=shapes_prompts holds prompts for online RL (its view is the policy's own "
                              f"samples, {PROMPT_VIEWS}), but the objective needs views {list(views)}; use an online "
                              "objective (objective=grpo, rloo, reinforce_pp, ppo) or preference data")
        problem = group_problem(batch_size, group_size)
        if problem:
            raise ConfigError(problem)
        if num_train_scenes < 1 or num_val_scenes < 0:
            raise ConfigError(f"data.num_train_scenes={num_train_scenes} must be >= 1 and data.num_val_scenes="
                              f"{num_val_scenes} >= 0")
        world = world_spec(world or {}, "world")
        self.train_set = ShapesPromptDataset("train", num_train_scenes, world, prompt)
        self.val_set = ShapesPromptDataset("val", num_val_scenes, world, prompt)
        self.batch_size = batch_size // group_size  # prompts per step; each gives group_size responses
        self.group_size, self.num_workers, self.shuffle_seed = group_size, num_workers, shuffle_seed
        self.collator = collate_prompts
        self._description = {"task": "prompts", "train": num_train_scenes, "val": num_val_scenes,
                             "world": world.to_dict(), "prompt": prompt}
