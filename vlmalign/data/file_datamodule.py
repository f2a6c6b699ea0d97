"""LightningDataModule for dataset files in a public format (RLAIF-V, VLFeedback, mDPO JSON, TRL, LLaVA, local).

``adapter`` (a ``_target_`` node of ``vlmalign.data.adapters``) turns rows into examples; every row is
checked when the module is built (``vlmalign.data.file_dataset.scan``) and ``on_error`` says what a bad
row does: ``raise`` stops with a DataError naming file and row, ``skip`` leaves it out, logs it, and
counts it by reason (``skipped`` in ``identity()``; every message in ``self.skipped_rows``).

Validation data: ``val_file``, or, without one, a held-out ``val_fraction`` of the train files' rows
chosen by ``split_seed`` (whole rows, so VLFeedback's pairs of one instruction never straddle the split).
Encoding, collation and the resumable loaders are the shapes datamodule's (``SplitDataModule``).

``identity()`` (what the precomputed reference cache keys on) fingerprints each data file (path, size,
mtime, and a SHA-256 up to 64 MiB), the adapter and its knobs, the split, the policy and the counts.
Images stored as separate files are not hashed (there can be hundreds of thousands): replacing them in
place under the same ``image_root`` is not seen by the cache.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from vlmalign.data.adapters.base import Adapter
from vlmalign.data.collate import MultiViewCollator
from vlmalign.data.corruptions import ImageCorruption
from vlmalign.data.datamodule import TASK_VIEWS
from vlmalign.data.encoding import SequenceEncoder
from vlmalign.data.file_dataset import FileExamples, UnpairedFileExamples, file_identity
from vlmalign.data.file_reading import read_files
from vlmalign.data.split_datamodule import SplitDataModule
from vlmalign.data.unpaired import check_both_classes
from vlmalign.errors import ConfigError

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
        self.encoder = SequenceEncoder(processor, max_length)
        self.collator = MultiViewCollator(processor.tokenizer.pad_token_id, tuple(views), corruption, corruption_seed)
        self.batch_size, self.num_workers, self.shuffle_seed = batch_size, num_workers, shuffle_seed
        self.group_by_length = group_by_length
        read = read_files(adapter, train_file, val_file, val_fraction, split_seed, image_root, format, streaming,
                          on_error, check_images, cache_dir)
        self.policy, train_refs, val_refs, files = read.policy, read.train_refs, read.val_refs, read.files
        train_paths, val_paths, dropped = read.train_paths, read.val_paths, read.dropped
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
            "source": adapter.name, "task": task, "adapter": adapter.identity(),
            "train_files": [file_identity(p) for p in train_paths], "val_files": [file_identity(p) for p in val_paths],
            "val_fraction": None if val_paths else val_fraction, "split_seed": None if val_paths else split_seed,
            "image_root": image_root, "on_error": on_error, "check_images": check_images,
            "train": len(train_refs), "val": len(val_refs), "skipped": summary,
            "dropped": dict(sorted(dropped.items())),
            "max_length": max_length, "corruption": getattr(corruption, "name", None),
            "corruption_seed": corruption_seed,
        }
        log.info("data=%s: %d train and %d val examples from %s", adapter.name, len(train_refs), len(val_refs),
                 ", ".join(str(p) for p in train_paths + val_paths))
