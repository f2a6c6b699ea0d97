"""Images of file datasets: inline bytes (parquet ``Image`` columns, ``{'bytes', 'path'}``) or paths relative
to an image root. A missing or unreadable image is a ``RowError`` (the reader names file and row)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from vlmalign.data.adapters.validation import RowError

ImageSource = bytes | Path  # what a row's image resolves to


def resolve_image(value: Any, image_root: Path) -> ImageSource | Image.Image:
    """A row's raw image value as bytes, a path (relative ones under ``image_root``) or an already decoded image.

    Accepts what the public formats hold: ``{'bytes', 'path'}`` structs (bytes first), raw bytes, path strings,
    PIL images (a ``datasets`` column that was decoded).
    """
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, Mapping):
        if value.get("bytes"):
            return bytes(value["bytes"])
        value = value.get("path")
    if isinstance(value, (bytes, bytearray, memoryview)):
        if not len(value):
            raise RowError("missing_image", "the image bytes are empty")
        return bytes(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RowError("missing_image", "the row has no image (no bytes and no path)")
    if not isinstance(value, (str, Path)):
        raise RowError("bad_value", "the image must be bytes, a path or {'bytes', 'path'}, got "
                                    f"{type(value).__name__}")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else image_root / path
    if not path.is_file():
        raise RowError("missing_image", f"image file {path} does not exist")
    return path


def open_image(source: ImageSource | Image.Image, check_only: bool = False) -> Image.Image | None:
    """The decoded RGB image (``check_only``: decode it to prove it is readable, keep nothing)."""
    if isinstance(source, Image.Image):
        return None if check_only else source.convert("RGB")
    what = f"image file {source}" if isinstance(source, Path) else f"image bytes ({len(source)} B)"
    try:
        with Image.open(source if isinstance(source, Path) else io.BytesIO(source)) as image:
            if check_only:
                # A full decode, not Image.verify(): verify reads headers (and PNG checksums) but not JPEG data,
                # so a truncated JPEG passed the check and failed later, mid-training.
                image.load()
                return None
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise RowError("unreadable_image", f"{what} cannot be read as an image ({error})") from error
