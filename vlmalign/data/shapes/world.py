"""Scenes of the shapes world: a few objects on a 3x3 grid, each a shape x colour x size.

Scene i of a split is drawn from its own RNG seeded by (seed, split, i), so it does not depend on how
many scenes are asked for, and train/val/test differ by construction (CPython hashes str seeds
deterministically, independent of PYTHONHASHSEED).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

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


# World v3's language priors (docs/foundation.md, "World v3"): each shape has a usual colour, and shapes come in
# companion pairs that tend to appear together, the way forks go with knives in COCO. Purple is usual for nothing.
USUAL_COLOR = {"circle": "red", "square": "blue", "triangle": "green", "diamond": "yellow"}
COMPANION = {"circle": "square", "square": "circle", "triangle": "diamond", "diamond": "triangle"}
MAX_OBJECTS = len(POSITIONS)  # one object per cell of the 3x3 grid
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 24, 1024


@dataclass(frozen=True)
class WorldSpec:
    """Which scenes exist and how they look: the one settings object of the shapes world (``world``).

    Checked once, here; every shapes datamodule, the evaluator, the RLAIF-V instructions and Synth²'s real set
    take it instead of repeating its fields. ``color_prior`` and ``cooccurrence`` are the strength knobs of the
    language priors (0: none, the first world's independent attributes): each object after the first is its
    predecessor's companion shape with probability ``cooccurrence`` (else any shape), and takes its shape's usual
    colour with probability ``color_prior`` (else any colour). So in a two-object scene P(companions) =
    c + (1 - c)/4, and per object P(usual colour) = p + (1 - p)/5 (tests/shapes/test_world_v3.py checks both).
    """

    seed: int = 0
    min_objects: int = 1
    max_objects: int = 3
    image_size: int = 96
    color_prior: float = 0.0
    cooccurrence: float = 0.0
    usual_color: Mapping[str, str] = field(default_factory=lambda: dict(USUAL_COLOR))
    companion: Mapping[str, str] = field(default_factory=lambda: dict(COMPANION))

    def __post_init__(self) -> None:
        for name in ("seed", "min_objects", "max_objects", "image_size"):
            if not isinstance(getattr(self, name), int) or isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be an integer")
        if not 1 <= self.min_objects <= self.max_objects <= MAX_OBJECTS:
            raise ValueError(f"min_objects={self.min_objects}, max_objects={self.max_objects}: need 1 <= min_objects "
                             f"<= max_objects <= {MAX_OBJECTS} (one object per cell of the 3x3 grid)")
        if not MIN_IMAGE_SIZE <= self.image_size <= MAX_IMAGE_SIZE:
            raise ValueError(f"image_size={self.image_size} is out of range: shapes images are {MIN_IMAGE_SIZE}.."
                             f"{MAX_IMAGE_SIZE} pixels (it normally interpolates model.image_size)")
        for name in ("color_prior", "cooccurrence"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value!r} must be a probability in [0, 1] (0: no prior, 1: always)")
        object.__setattr__(self, "usual_color", dict(self.usual_color))
        object.__setattr__(self, "companion", dict(self.companion))
        self._check_tables()

    def _check_tables(self) -> None:
        usual, companion = self.usual_color, self.companion
        if set(usual) != set(SHAPES) or not set(usual.values()) <= set(COLORS):
            raise ValueError(f"usual_color={usual}: needs one colour of {COLORS} for each shape of {SHAPES}")
        if set(companion) != set(SHAPES) or not set(companion.values()) <= set(SHAPES):
            raise ValueError(f"companion={companion}: needs one companion shape of {SHAPES} for each shape")
        for shape, other in companion.items():
            if other == shape or companion[other] != shape:
                raise ValueError(f"companion={companion}: companions must be pairs of two different shapes, each the "
                                 f"other's ({shape} -> {other}, but {other} -> {companion[other]})")

    def to_dict(self) -> dict:
        return asdict(self)

    def scenes(self, split: str, num: int, counter_prior: bool = False) -> list[Scene]:
        """``num`` scenes of ``split``; scene i is a function of (this spec, split, i, counter_prior) only.

        ``counter_prior`` draws the pattern-breaking kind, for the held-out split that tests the prior: no two
        objects companions, no object in its shape's usual colour. With both strengths 0 no extra random number
        is drawn for a usual scene, so the first world's scenes come out unchanged.
        """
        if num < 0:
            raise ValueError(f"num={num} must be >= 0")
        kind = ":counter" if counter_prior else ""
        return [self.sample(random.Random(f"{self.seed}:{split}{kind}:{i}"), f"{split}{kind}-{self.seed}-{i:06d}",
                            counter_prior) for i in range(num)]

    def sample(self, rng: random.Random, image_id: str, counter_prior: bool = False) -> Scene:
        """One scene; objects are listed in reading order (top-left to bottom-right) of their distinct cells."""
        count = rng.randint(self.min_objects, self.max_objects)
        cells = rng.sample(POSITIONS, count)
        shapes: list[str] = []
        objects = []
        for cell in sorted(cells, key=POSITIONS.index):
            shape = self._shape(rng, shapes, counter_prior)
            shapes.append(shape)
            objects.append(ShapeObject(shape, self._color(rng, shape, counter_prior), rng.choice(SIZES), cell))
        return Scene(image_id, tuple(objects))

    def shape_probability(self, shape: str, previous: str | None) -> float:
        """P(an object's shape | its predecessor's in reading order) under ``sample`` (usual scenes)."""
        uniform = 1 / len(SHAPES)
        if previous is None:
            return uniform
        return self.cooccurrence * (shape == self.companion[previous]) + (1 - self.cooccurrence) * uniform

    def color_probability(self, color: str, shape: str) -> float:
        return self.color_prior * (color == self.usual_color[shape]) + (1 - self.color_prior) / len(COLORS)

    def identity_posterior(self, scene: Scene, index: int) -> dict[tuple[str, str], float]:
        """P((colour, shape) of object ``index`` | every other object of ``scene``), exactly: shapes form a Markov
        chain in reading order and colours depend on their own shape only, so only the neighbours matter."""
        shapes = [o.shape for o in scene.objects]
        before = shapes[index - 1] if index else None
        after = shapes[index + 1] if index + 1 < len(shapes) else None
        weights = {}
        for shape in SHAPES:
            weight = self.shape_probability(shape, before)
            if after is not None:
                weight *= self.shape_probability(after, shape)
            for color in COLORS:
                weights[(color, shape)] = weight * self.color_probability(color, shape)
        total = sum(weights.values())
        return {identity: w / total for identity, w in weights.items()}

    def expected_beside(self, scene: Scene) -> list[tuple[str, str]]:
        """The (colour, shape) pairs the priors expect given the scene's shapes: each shape in its usual colour and
        each one's companion in its usual colour (sorted; present ones included)."""
        shapes = {o.shape for o in scene.objects}
        return sorted({(self.usual_color[s], s) for s in shapes} |
                      {(self.usual_color[self.companion[s]], self.companion[s]) for s in shapes})

    def _shape(self, rng: random.Random, placed: list[str], counter_prior: bool) -> str:
        if counter_prior:
            return rng.choice([s for s in SHAPES if all(self.companion[p] != s for p in placed)])
        if placed and self.cooccurrence and rng.random() < self.cooccurrence:
            return self.companion[placed[-1]]
        return rng.choice(SHAPES)

    def _color(self, rng: random.Random, shape: str, counter_prior: bool) -> str:
        if counter_prior:
            return rng.choice([c for c in COLORS if c != self.usual_color[shape]])
        if self.color_prior and rng.random() < self.color_prior:
            return self.usual_color[shape]
        return rng.choice(COLORS)


def sample_scene(rng: random.Random, image_id: str, min_objects: int = 1, max_objects: int = 3) -> Scene:
    """One scene of independent attributes (no prior), e.g. for the vision tower's pre-training."""
    return WorldSpec(min_objects=min_objects, max_objects=max_objects).sample(rng, image_id)


def generate_scenes(split: str, num: int, seed: int = 0, min_objects: int = 1, max_objects: int = 3,
                    **priors) -> list[Scene]:
    """Shorthand for ``WorldSpec(seed, min_objects, max_objects, **priors).scenes(split, num)``."""
    return WorldSpec(seed=seed, min_objects=min_objects, max_objects=max_objects, **priors).scenes(split, num)


def world_spec(value: WorldSpec | Mapping, key: str = "world") -> WorldSpec:
    """``value`` (a config mapping) as a checked WorldSpec; a mistake is a ConfigError naming ``key``."""
    if isinstance(value, WorldSpec):
        return value
    from vlmalign.errors import ConfigError

    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}={value!r} must be a mapping of the world settings {sorted(_FIELDS_OF_SPEC)}")
    unknown = sorted(set(value) - _FIELDS_OF_SPEC)
    if unknown:
        raise ConfigError(f"{key}: unknown settings {unknown}; the world's settings are {sorted(_FIELDS_OF_SPEC)}")
    try:
        return WorldSpec(**{name: dict(v) if isinstance(v, Mapping) else v for name, v in value.items()})
    except ValueError as error:
        raise ConfigError(f"{key}: {error}") from error


_FIELDS_OF_SPEC = set(WorldSpec.__dataclass_fields__)
