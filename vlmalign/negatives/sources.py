"""Where preference pairs come from: a JSON-lines file, or the shapes world's preference split.

Every input row is checked before any work starts, so a bad row is reported (file:line, the field,
what was expected) before a single output line is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vlmalign.data.shapes.world import Scene
from vlmalign.errors import ConfigError, DataError
from vlmalign.io.jsonl import iter_jsonl
from vlmalign.negatives.interface import PreferenceSample

TEXT_FIELDS = ("prompt", "chosen", "rejected")
EXPECTED = ("one JSON object per line with fields id (string or integer), prompt, chosen, rejected (strings) "
            "and image (a path) and/or scene (a shapes scene object)")


def sample_from_row(row: Any, origin: str) -> PreferenceSample:
    """One input row as a sample; a DataError names ``origin`` (file:line) and the offending field."""
    if not isinstance(row, dict):
        raise DataError(f"{origin}: expected {EXPECTED}; got a JSON {type(row).__name__}")
    missing = [f for f in ("id", *TEXT_FIELDS) if f not in row]
    if missing:
        raise DataError(f"{origin}: missing field(s) {', '.join(repr(f) for f in missing)}; expected {EXPECTED}")
    if not isinstance(row["id"], (str, int)) or isinstance(row["id"], bool) or str(row["id"]) == "":
        raise DataError(f"{origin}: field 'id' must be a non-empty string or an integer, got {row['id']!r}")
    for name in TEXT_FIELDS:
        if not isinstance(row[name], str):
            raise DataError(f"{origin}: field {name!r} must be a string, got {type(row[name]).__name__}")
    if row.get("image") is None and row.get("scene") is None:
        raise DataError(f"{origin}: needs field 'image' (a path) or 'scene'; expected {EXPECTED}")
    image = row.get("image")
    if image is not None and not isinstance(image, str):
        raise DataError(f"{origin}: field 'image' must be a path string, got {type(image).__name__}")
    scene = None
    if row.get("scene") is not None:
        try:
            scene = Scene.from_dict(row["scene"])
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise DataError(f"{origin}: field 'scene' is not a shapes scene ({error}); expected "
                            "{'image_id': str, 'objects': [{'shape', 'color', 'size', 'position'}, ...]}") from error
    return PreferenceSample(str(row["id"]), row["prompt"], row["chosen"], row["rejected"], image, scene, origin)


def read_preference_jsonl(path: str | Path) -> list[PreferenceSample]:
    """Every row of ``path``, validated; duplicate ids are an error (resuming keys on them)."""
    samples: list[PreferenceSample] = []
    first_line: dict[str, int] = {}
    for number, row in iter_jsonl(path):
        sample = sample_from_row(row, f"{path}:{number}")
        if sample.id in first_line:
            raise DataError(f"{path}:{number}: duplicate id {sample.id!r} (first on line {first_line[sample.id]}); "
                            "ids must be unique, the output is keyed on them")
        first_line[sample.id] = number
        samples.append(sample)
    return samples



def shapes_preference_samples(
    split: str,
    num_scenes: int,
    world: Mapping[str, Any],
    error_mix: Mapping[str, float] | None,
    plausibility: float,
    num_errors: int,
    pair_kind: str = "injected",
) -> list[PreferenceSample]:
    """The pairs ``ShapesPreferenceDataset`` trains on for these knobs, scene by scene, with their scenes."""
    from vlmalign.data.shapes import world_spec
    from vlmalign.data.shapes_preference import ShapesPreferenceDataset  # imports torch; only when asked for

    if pair_kind == "onpolicy":
        raise ConfigError("shapes preference split: pair_kind=onpolicy pairs come from a policy's captions; train "
                          "with data.pair_kind=onpolicy, or pick injected, text_detectable or image_only here")
    try:
        dataset = ShapesPreferenceDataset(None, split, num_scenes, world_spec(world, "world"), error_mix=error_mix,
                                          plausibility=plausibility, num_errors=num_errors,
                                          pair_kind=pair_kind)  # text and scenes only
        samples = []
        for index in range(num_scenes):
            scene, pair = dataset.pair_for(index)
            samples.append(PreferenceSample(scene.image_id, pair.prompt, pair.chosen, pair.rejected, None, scene,
                                            f"shapes:{split}:{index}"))
    except ValueError as error:  # the shapes world names the bad knob
        raise ConfigError(f"shapes preference split: {error}") from error
    return samples
