"""Render a scene to pixels: flat background, each object filled inside its grid cell.

Small objects span about 45% of their cell and large ones about 90%, so size is visible even at 64x64
(at the default 64 px a cell is ~21 px). A small jitter seeded by the image id keeps objects from
being pixel-aligned without making rendering depend on any global RNG.
"""

from __future__ import annotations

import random

from PIL import Image, ImageDraw

from vlmalign.data.shapes.world import POSITIONS, Scene

RGB = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (235, 205, 40),
       "purple": (150, 60, 190)}
BACKGROUND = (235, 235, 235)
SCALE = {"small": 0.45, "large": 0.9}
MIN_SIZE = 24


def render_scene(scene: Scene, image_size: int = 64) -> Image.Image:
    if image_size < MIN_SIZE:
        raise ValueError(f"image_size={image_size} is too small: shapes images need image_size >= {MIN_SIZE}")
    image = Image.new("RGB", (image_size, image_size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    cell = image_size / 3
    jitter = random.Random(scene.image_id)
    for obj in scene.objects:
        row, col = divmod(POSITIONS.index(obj.position), 3)
        half = SCALE[obj.size] * cell / 2
        slack = (cell / 2 - half) * 0.8
        cx = (col + 0.5) * cell + jitter.uniform(-slack, slack)
        cy = (row + 0.5) * cell + jitter.uniform(-slack, slack)
        box = (cx - half, cy - half, cx + half, cy + half)
        fill = RGB[obj.color]
        if obj.shape == "circle":
            draw.ellipse(box, fill=fill)
        elif obj.shape == "square":
            draw.rectangle(box, fill=fill)
        elif obj.shape == "triangle":
            draw.polygon([(cx, cy - half), (cx + half, cy + half), (cx - half, cy + half)], fill=fill)
        else:  # diamond
            draw.polygon([(cx, cy - half), (cx + half, cy), (cx, cy + half), (cx - half, cy)], fill=fill)
    return image
