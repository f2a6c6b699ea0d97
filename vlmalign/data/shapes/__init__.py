"""The shapes world: procedural scenes with exact ground truth (docs/design.md, "The shapes world (v3)")."""

from vlmalign.data.shapes.corpus import corpus
from vlmalign.data.shapes.parse import Mention, parse_count, parse_mentions, parse_yes_no
from vlmalign.data.shapes.preference import (
    ERROR_TYPES,
    PreferencePair,
    check_preference_knobs,
    make_preference_pair,
    text_tells,
)
from vlmalign.data.shapes.render import render_scene
from vlmalign.data.shapes.text import CAPTION_PROMPTS, describe, questions, render_caption, vocabulary
from vlmalign.data.shapes.world import (
    COLORS,
    POSITIONS,
    SHAPES,
    SIZES,
    Scene,
    ShapeObject,
    WorldSpec,
    generate_scenes,
    world_spec,
)

__all__ = [
    "CAPTION_PROMPTS", "COLORS", "ERROR_TYPES", "POSITIONS", "SHAPES", "SIZES", "Mention", "PreferencePair", "Scene",
    "ShapeObject", "check_preference_knobs", "corpus", "describe", "generate_scenes", "make_preference_pair",
    "parse_count", "parse_mentions", "parse_yes_no", "questions", "render_caption", "render_scene", "text_tells",
    "vocabulary", "WorldSpec", "world_spec",
]
