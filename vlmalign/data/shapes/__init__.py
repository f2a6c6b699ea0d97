"""The shapes world: procedural scenes with exact ground truth (DESIGN.md)."""

from vlmalign.data.shapes.parse import Mention, parse_count, parse_mentions, parse_yes_no
from vlmalign.data.shapes.render import render_scene
from vlmalign.data.shapes.text import CAPTION_PROMPTS, corpus, describe, questions, render_caption, vocabulary
from vlmalign.data.shapes.world import COLORS, POSITIONS, SHAPES, SIZES, Scene, ShapeObject, generate_scenes

__all__ = [
    "CAPTION_PROMPTS", "COLORS", "POSITIONS", "SHAPES", "SIZES", "Mention", "Scene", "ShapeObject", "corpus",
    "describe", "generate_scenes", "parse_count", "parse_mentions", "parse_yes_no", "questions", "render_caption",
    "render_scene", "vocabulary",
]
