"""Scenes and rendering: deterministic, split-disjoint, well-formed, and visibly what the scene says."""

import subprocess
import sys
from pathlib import Path

import pytest

from vlmalign.data.shapes import COLORS, POSITIONS, SHAPES, SIZES, Scene, ShapeObject, generate_scenes, render_scene
from vlmalign.data.shapes.render import BACKGROUND, RGB

ROOT = Path(__file__).resolve().parents[2]


def test_scenes_are_deterministic_and_independent_of_count():
    assert generate_scenes("train", 50, seed=3) == generate_scenes("train", 50, seed=3)
    assert generate_scenes("train", 80, seed=3)[:50] == generate_scenes("train", 50, seed=3)
    assert generate_scenes("train", 50, seed=3) != generate_scenes("train", 50, seed=4)
    assert [s.image_id for s in generate_scenes("val", 2, seed=7)] == ["val-7-000000", "val-7-000001"]


def test_scenes_do_not_depend_on_the_hash_seed():
    code = "from vlmalign.data.shapes import generate_scenes; print(generate_scenes('test', 5, seed=1))"
    runs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       cwd=ROOT, env={"PYTHONHASHSEED": str(h), "PYTHONPATH": str(ROOT)}).stdout
        for h in (1, 2)
    }
    assert runs == {str(generate_scenes("test", 5, seed=1)) + "\n"}


def test_splits_differ_and_objects_occupy_distinct_cells():
    train = {tuple(s.objects) for s in generate_scenes("train", 300)}
    test = [tuple(s.objects) for s in generate_scenes("test", 300, min_objects=2, max_objects=4)]
    assert sum(t in train for t in test) < 5  # only chance collisions of tiny scenes
    for objects in test:
        assert 2 <= len(objects) <= 4
        assert len({o.position for o in objects}) == len(objects)
        assert [o.position for o in objects] == sorted((o.position for o in objects), key=POSITIONS.index)
    full = generate_scenes("val", 3, min_objects=9, max_objects=9)
    assert all({o.position for o in s.objects} == set(POSITIONS) for s in full)


def test_every_attribute_value_occurs():
    objects = [o for s in generate_scenes("train", 200, max_objects=4) for o in s.objects]
    assert {o.shape for o in objects} == set(SHAPES) and {o.color for o in objects} == set(COLORS)
    assert {o.size for o in objects} == set(SIZES) and {o.position for o in objects} == set(POSITIONS)


def test_scene_dict_round_trip():
    scene = generate_scenes("val", 1, max_objects=4)[0]
    assert Scene.from_dict(scene.to_dict()) == scene
    assert scene.to_dict()["objects"][0].keys() == {"shape", "color", "size", "position"}


@pytest.mark.parametrize("kwargs, match", [
    (dict(min_objects=1, max_objects=10), "max_objects"),
    (dict(min_objects=0, max_objects=3), "min_objects"),
    (dict(min_objects=3, max_objects=2), "min_objects"),
])
def test_bad_arguments_are_clear(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_scenes("train", 1, **kwargs)


def test_bad_values_are_clear():
    with pytest.raises(ValueError, match="num"):
        generate_scenes("train", -1)
    with pytest.raises(ValueError, match="color='pink'"):
        ShapeObject("circle", "pink", "small", "top")
    with pytest.raises(ValueError, match="image_size"):
        render_scene(generate_scenes("train", 1)[0], image_size=8)


def _pixels(image, colour):
    return sum(1 for p in image.getdata() if p == colour)


def test_render_is_deterministic_sized_and_distinct():
    scenes = generate_scenes("train", 10)
    for size in (24, 64, 100):
        image = render_scene(scenes[0], size)
        assert image.size == (size, size) and image.mode == "RGB"
    assert render_scene(scenes[0]).tobytes() == render_scene(scenes[0]).tobytes()
    assert len({render_scene(s, 64).tobytes() for s in scenes}) == 10


def test_render_draws_colour_size_shape_and_cell():
    def one(shape="square", color="red", size="large", position="center"):
        return render_scene(Scene("x", (ShapeObject(shape, color, size, position),)), 90)

    for color in COLORS:  # fill colour at the centre of the cell
        assert one(color=color).getpixel((45, 45)) == RGB[color]
    area = {shape: _pixels(one(shape), RGB["red"]) for shape in SHAPES}
    assert area["square"] > area["circle"] > area["triangle"] > 0 and area["circle"] > area["diamond"] > 0
    assert one("triangle").tobytes() != one("diamond").tobytes()
    assert _pixels(one(size="large"), RGB["red"]) > 3 * _pixels(one(size="small"), RGB["red"])
    corner = one(position="top left")  # drawn inside the top-left cell only
    xs_ys = [(i % 90, i // 90) for i, p in enumerate(corner.getdata()) if p != BACKGROUND]
    assert xs_ys and all(x < 30 and y < 30 for x, y in xs_ys)
