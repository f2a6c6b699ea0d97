"""LightningDataModule for dataset files in a public format (RLAIF-V, VLFeedback, mDPO JSON, TRL, LLaVA, local).

``adapter`` (a ``_target_`` node of ``vlmalign.data.adapters``) turns rows into examples; every row is
checked when the module is built (``vlmalign.data.file_dataset.scan``) and ``on_error`` says what a bad
row does: ``raise`` stops with a DataError naming file and row, ``skip`` leaves it out, logs it, and
counts it by reason (``skipped`` in ``describe()``; every message in ``self.skipped_rows``).

Validation data: ``val_file``, or, without one, a held-out ``val_fraction`` of the train files' rows
chosen by ``split_seed`` (whole rows, so VLFeedback's pairs of one instruction never straddle the split).
Encoding, collation and the resumable loaders are the shapes datamodule's (``SplitDataModule``).

``describe()`` (what the precomputed reference cache keys on) fingerprints each data file (path, size,
mtime, and a SHA-256 up to 64 MiB), the adapter and its knobs, the split, the policy and the counts.
Images stored as separate files are not hashed (there can be hundreds of thousands): replacing them in
place under the same ``image_root`` is not seen by the cache.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

from vlmalign.data.adapters.base import Adapter
from vlmalign.data.adapters.validation import RowPolicy
from vlmalign.data.collate import MultiViewCollator
from vlmalign.data.corruptions import ImageCorruption
from vlmalign.data.datamodule import TASK_VIEWS
from vlmalign.data.encoding import SequenceEncoder
from vlmalign.data.file_dataset import (
    DataFile,
    ExampleRef,
    FileExamples,
    FileRows,
    UnpairedFileExamples,
    expand_files,
    file_format,
    fingerprint,
    scan,
)
from vlmalign.data.split_datamodule import SplitDataModule
from vlmalign.data.unpaired import check_both_classes
from vlmalign.errors import ConfigError, DataError

log = logging.getLogger("vlmalign.data")


class FileDataModule(SplitDataModule):
    def __init__(
        self,
        processor,
        adapter: Adapter,
        train_file: str | Sequence[str],
        views: tuple[str, ...] = ("chosen",),
        task: str = "preference",
        val_file: str | Sequence[str] | None = None,
        val_fraction: float = 0.01,
        split_seed: int = 0,
        image_root: str | None = None,
        format: str | None = None,  # noqa: A002 - the config key users write
        streaming: bool = False,
        on_error: str = "raise",
        check_images: bool = True,
        cache_dir: str | None = None,
        corruption: ImageCorruption | None = None,
        corruption_seed: int = 0,
        max_length: int = 512,
        batch_size: int = 8,
        num_workers: int = 0,
        shuffle_seed: int = 0,
        group_by_length: bool = False,
        # The shapes validation callback reads its scene count from data.num_val_scenes; it changes no example.
        num_val_scenes: int = 64,
    ) -> None:
        super().__init__()
        if task != adapter.task:
            raise ConfigError(f"data.task={task!r} but the {adapter.name} adapter gives {adapter.task} data")
        lacking = [v for v in views if v not in TASK_VIEWS[task]]
        if lacking:
            raise ConfigError(f"the objective needs views {lacking} but data={adapter.name} is {task} data with "
                              f"only {list(TASK_VIEWS[task])}; use preference data or an objective without them")
        if batch_size < 1:
            raise ConfigError(f"data.batch_size={batch_size} must be >= 1")
        self.policy = RowPolicy(on_error)
        train_paths = expand_files(train_file, "data.train_file")
        val_paths = expand_files(val_file, "data.val_file")
        if not train_paths:
            raise ConfigError("data.train_file is required: the file(s) to train on")
        if not val_paths and not 0 < val_fraction < 1:
            raise ConfigError(f"data.val_fraction={val_fraction} must be in (0, 1) when data.val_file is not given")
        self.encoder = SequenceEncoder(processor, max_length)
        self.collator = MultiViewCollator(processor.tokenizer.pad_token_id, tuple(views), corruption, corruption_seed)
        self.batch_size, self.num_workers, self.shuffle_seed = batch_size, num_workers, shuffle_seed
        self.group_by_length = group_by_length

        def open_files(paths: list[Path], tag: str) -> list[DataFile]:
            root = Path(image_root).expanduser().resolve() if image_root else None
            return [DataFile(FileRows(p, file_format(p, format), streaming, cache_dir), tag, root or p.parent)
                    for p in paths]

        train_files = open_files(train_paths, "train")
        refs, dropped, train_rows = scan(train_files, adapter, self.policy, check_images)
        if val_paths:
            val_files = open_files(val_paths, "val")
            val_refs, val_dropped, _ = scan(val_files, adapter, self.policy, check_images)
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
                raise DataError(f"data: the {split} split has no usable examples "
                                f"({self.policy.summary()['skipped']} rows skipped by data.on_error=skip: "
                                f"{self.policy.summary()['by_reason']}); check the files or raise data.val_fraction")
        self.skipped_rows = self.policy.skipped
        examples = UnpairedFileExamples if task == "unpaired" else FileExamples
        self.train_set = examples(self.encoder, adapter, files, train_refs)
        self.val_set = examples(self.encoder, adapter, files, val_refs)
        if task == "unpaired":
            check_both_classes(self.train_set.labels(), f"data.train_file ({len(train_refs)} training examples)")
        summary = self.policy.summary()
        if summary["skipped"]:
            log.warning("data.on_error=skip: %d rows or pairs skipped (%s); each is logged above",
                        summary["skipped"], summary["by_reason"])
        self._description = {
            "source": adapter.name, "task": task, "adapter": adapter.knobs(),
            "train_files": [fingerprint(p) for p in train_paths], "val_files": [fingerprint(p) for p in val_paths],
            "val_fraction": None if val_paths else val_fraction, "split_seed": None if val_paths else split_seed,
            "image_root": image_root, "on_error": on_error, "check_images": check_images,
            "train": len(train_refs), "val": len(val_refs), "skipped": summary,
            "dropped": dict(sorted(dropped.items())),
            "max_length": max_length, "corruption": getattr(corruption, "name", None),
            "corruption_seed": corruption_seed,
        }
        log.info("data=%s: %d train and %d val examples from %s", adapter.name, len(train_refs), len(val_refs),
                 ", ".join(str(p) for p in train_paths + val_paths))


def held_out_rows(paths: Sequence[Path], rows: Sequence[int], fraction: float, seed: int) -> set[tuple[int, int]]:
    """``max(1, round(fraction * all rows))`` (file, row) pairs, ranked by a seeded hash of file name and row:
    the same rows for the same files and seed, whatever rows ``on_error=skip`` drops."""
    every = [(f, r) for f, count in enumerate(rows) for r in range(count)]
    count = max(1, round(fraction * len(every)))

    def rank(item: tuple[int, int]) -> str:
        return hashlib.sha256(f"{seed}:{paths[item[0]].name}:{item[1]}".encode()).hexdigest()

    return set(sorted(every, key=rank)[:count])
