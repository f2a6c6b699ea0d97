"""Scenes of the shapes world: a few objects on a 3x3 grid, each a shape x colour x size.

Scene i of a split is drawn from its own RNG seeded by (seed, split, i), so it does not depend on how
many scenes are asked for, and train/val/test differ by construction (CPython hashes str seeds
deterministically, independent of PYTHONHASHSEED).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SHAPES = ("circle", "square", "triangle", "diamond")
COLORS = ("red", "green", "blue", "yellow", "purple")
SIZES = ("small", "large")
POSITIONS = ("top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right")
_FIELDS = {"shape": SHAPES, "color": COLORS, "size": SIZES, "position": POSITIONS}


@dataclass(frozen=True)
class ShapeObject:
    shape: str
    color: str
    size: str
    position: str

    def __post_init__(self) -> None:
        # Scenes come back from JSON (Scene.from_dict); a typo there must fail here, not as a KeyError in rendering.
        for name, allowed in _FIELDS.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"ShapeObject.{name}={getattr(self, name)!r} is not one of {allowed}")

    def to_dict(self) -> dict:
        return {"shape": self.shape, "color": self.color, "size": self.size, "position": self.position}

    @property
    def identity(self) -> tuple[str, str]:
        """What CHAIR and POPE count as one object category: (colour, shape)."""
        return (self.color, self.shape)


@dataclass(frozen=True)
class Scene:
    image_id: str
    objects: tuple[ShapeObject, ...]

    def to_dict(self) -> dict:
        return {"image_id": self.image_id, "objects": [o.to_dict() for o in self.objects]}

    @classmethod
    def from_dict(cls, data: dict) -> Scene:
        return cls(data["image_id"], tuple(ShapeObject(**o) for o in data["objects"]))


def sample_scene(rng: random.Random, image_id: str, min_objects: int = 1, max_objects: int = 3) -> Scene:
    """One scene; objects are listed in reading order (top-left to bottom-right) of their distinct cells."""
    count = rng.randint(min_objects, max_objects)
    cells = rng.sample(POSITIONS, count)
    objects = tuple(
        ShapeObject(rng.choice(SHAPES), rng.choice(COLORS), rng.choice(SIZES), cell)
        for cell in sorted(cells, key=POSITIONS.index)
    )
    return Scene(image_id, objects)


def generate_scenes(split: str, num: int, seed: int = 0, min_objects: int = 1, max_objects: int = 3) -> list[Scene]:
    """``num`` scenes of ``split``; scene i is a function of (split, seed, i, min/max) only."""
    if not 1 <= min_objects <= max_objects <= len(POSITIONS):
        raise ValueError(
            f"min_objects={min_objects}, max_objects={max_objects}: need 1 <= min_objects <= max_objects <= "
            f"{len(POSITIONS)} (one object per cell of the 3x3 grid)"
        )
    if num < 0:
        raise ValueError(f"num={num} must be >= 0")
    return [
        sample_scene(random.Random(f"{seed}:{split}:{i}"), f"{split}-{seed}-{i:06d}", min_objects, max_objects)
        for i in range(num)
    ]
