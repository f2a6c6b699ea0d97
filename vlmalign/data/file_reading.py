"""Read and check a file dataset's rows once, before any model is built, and split them into train and val.

``read_files`` expands the configured paths, opens each file, runs every row through the adapter and the
row checks (``file_dataset.scan``: images decoded when ``check_images``), applies ``data.on_error`` and
holds out the validation rows. The run-config check (``vlmalign.validation``) calls it with the config's
values before the SFT base or the policy is built, so a missing file, a bad row or a missing image stops
the run in seconds; the datamodule, built later with the same values, gets the same result from the
in-process memo instead of reading (and decoding) every file a second time.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vlmalign.data.adapters.base import Adapter
from vlmalign.data.adapters.validation import RowPolicy
from vlmalign.data.file_dataset import DataFile, ExampleRef, FileRows, expand_files, file_format, file_identity, scan
from vlmalign.errors import ConfigError, DataError


@dataclass(frozen=True)
class ReadFiles:
    train_paths: list[Path]
    val_paths: list[Path]
    files: list[DataFile]
    train_refs: list[ExampleRef]
    val_refs: list[ExampleRef]
    dropped: Counter
    policy: RowPolicy


_READ: dict[str, ReadFiles] = {}  # memo: the config check and the datamodule of one run read the files once


def read_files(adapter: Adapter, train_file, val_file, val_fraction: float, split_seed: int, image_root: str | None,
               fmt: str | None, streaming: bool, on_error: str, check_images: bool, cache_dir: str | None
               ) -> ReadFiles:
    policy = RowPolicy(on_error)
    train_paths = expand_files(train_file, "data.train_file")
    val_paths = expand_files(val_file, "data.val_file")
    if not train_paths:
        raise ConfigError("data.train_file is required: the file(s) to train on")
    if not val_paths and not 0 < val_fraction < 1:
        raise ConfigError(f"data.val_fraction={val_fraction} must be in (0, 1) when data.val_file is not given")
    key = json.dumps([type(adapter).__qualname__, adapter.identity(),
                      [file_identity(p) for p in train_paths + val_paths], len(train_paths), val_fraction,
                      split_seed, image_root, fmt, streaming, on_error, check_images, cache_dir],
                     sort_keys=True, default=str)
    if key in _READ:
        return _READ[key]

    def open_files(paths: list[Path], tag: str) -> list[DataFile]:
        root = Path(image_root).expanduser().resolve() if image_root else None
        return [DataFile(FileRows(p, file_format(p, fmt), streaming, cache_dir), tag, root or p.parent) for p in paths]

    train_files = open_files(train_paths, "train")
    refs, dropped, train_rows = scan(train_files, adapter, policy, check_images)
    if val_paths:
        val_files = open_files(val_paths, "val")
        val_refs, val_dropped, _ = scan(val_files, adapter, policy, check_images)
        dropped += val_dropped
        train_refs, offset = refs, len(train_files)
        val_refs = [ExampleRef(r.file + offset, r.row, r.record, r.sample_id) for r in val_refs]
        files = train_files + val_files
    else:
        held_out = held_out_rows(train_paths, train_rows, val_fraction, split_seed)
        train_refs = [r for r in refs if (r.file, r.row) not in held_out]
        val_refs = [r for r in refs if (r.file, r.row) in held_out]
        files = train_files
    for split, split_refs in (("train", train_refs), ("val", val_refs)):
        if not split_refs:
            raise DataError(empty_split_message(split, policy.summary(), len(refs), bool(val_paths)))
    _READ[key] = ReadFiles(train_paths, val_paths, files, train_refs, val_refs, dropped, policy)
    return _READ[key]


def empty_split_message(split: str, skipped: dict, usable: int, val_file_given: bool) -> str:
    """Why a split is empty, with the fix that applies: rows skipped as bad need better files; only a val split
    carved from the train files grows with ``data.val_fraction``."""
    text = f"data: the {split} split has no usable examples"
    if skipped["skipped"]:
        text += f" ({skipped['skipped']} rows skipped by data.on_error=skip: {skipped['by_reason']}, each logged above)"
    if usable == 0:
        return text + "; no row of the files can be used: fix the files (or data.image_root) and run again"
    if split == "val" and not val_file_given:
        return text + f"; raise data.val_fraction (or give data.val_file): {usable} usable examples in all"
    if split == "train" and not val_file_given:
        return text + f"; lower data.val_fraction: it holds out all {usable} usable examples"
    return text + "; check that file"


def held_out_rows(paths: Sequence[Path], rows: Sequence[int], fraction: float, seed: int) -> set[tuple[int, int]]:
    """``max(1, round(fraction * all rows))`` (file, row) pairs, ranked by a seeded hash of file name and row:
    the same rows for the same files and seed, whatever rows ``on_error=skip`` drops."""
    every = [(f, r) for f, count in enumerate(rows) for r in range(count)]
    count = max(1, round(fraction * len(every)))

    def rank(item: tuple[int, int]) -> str:
        return hashlib.sha256(f"{seed}:{paths[item[0]].name}:{item[1]}".encode()).hexdigest()

    return set(sorted(every, key=rank)[:count])
