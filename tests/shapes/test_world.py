"""Scenes and rendering: deterministic, split-disjoint, well-formed."""

import random

import pytest

from vlmalign.data.shapes import POSITIONS, Scene, generate_scenes, render_scene


def test_scenes_are_deterministic_and_independent_of_count():
    assert generate_scenes("train", 50, seed=3) == generate_scenes("train", 50, seed=3)
    assert generate_scenes("train", 80, seed=3)[:50] == generate_scenes("train", 50, seed=3)
    assert generate_scenes("train", 50, seed=3) != generate_scenes("train", 50, seed=4)


def test_splits_differ_and_objects_occupy_distinct_cells():
    train = {tuple(s.objects) for s in generate_scenes("train", 300)}
    test = [tuple(s.objects) for s in generate_scenes("test", 300, min_objects=2, max_objects=4)]
    assert sum(t in train for t in test) < 5  # only chance collisions of tiny scenes
    for objects in test:
        assert 2 <= len(objects) <= 4
        assert len({o.position for o in objects}) == len(objects)
        assert all(o.position in POSITIONS for o in objects)


def test_scene_dict_round_trip():
    scene = generate_scenes("val", 1)[0]
    assert Scene.from_dict(scene.to_dict()) == scene


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="max_objects"):
        generate_scenes("train", 1, min_objects=1, max_objects=10)
    with pytest.raises(ValueError, match="image_size"):
        render_scene(generate_scenes("train", 1)[0], image_size=8)


def test_render_is_deterministic_and_shows_the_objects():
    scenes = generate_scenes("train", 10)
    image = render_scene(scenes[0], 64)
    assert image.size == (64, 64) and image.mode == "RGB"
    assert image.tobytes() == render_scene(scenes[0], 64).tobytes()
    assert len({render_scene(s, 64).tobytes() for s in scenes}) == 10
    # a red object fills its cell's centre region with red pixels
    red = Scene("x", (generate_scenes("train", 1)[0].objects[0].__class__("square", "red", "large", "center"),))
    pixel = render_scene(red, 90).getpixel((45, 45))
    assert pixel[0] > 180 and pixel[1] < 80 and pixel[2] < 80
    random.Random(0)  # rendering must not depend on global RNG state
