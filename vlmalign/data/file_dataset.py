"""Read dataset files through ``datasets``, check every row once through its adapter, serve encoded examples.

``FileRows`` holds one file's rows: by default ``load_dataset(<format>, data_files=...)`` converts it once
to Arrow under ``cache_dir`` and rows are read from the memory map (RAM stays small even with inline
image bytes); ``streaming=true`` reads the file once without writing that copy and keeps the rows that
pass the checks in memory (for files whose images are paths). Rows are numbered from 0 as ``datasets``
numbers them; images are never decoded by ``datasets`` (``{'bytes', 'path'}`` is read as is).

``scan`` runs every row through the adapter and the generic checks (responses, pair, image present and,
with ``check_images``, readable) and applies ``data.on_error``. ``FileExamples`` re-reads a row when an
example is asked for, so only (file, row, record) indices stay in memory.
"""

from __future__ import annotations

import glob
import hashlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from vlmalign.data.adapters.base import Adapter, Record
from vlmalign.data.adapters.images import open_image, resolve_image
from vlmalign.data.adapters.validation import RowError, RowPolicy, check_record
from vlmalign.data.encoding import EncodedExample, SequenceEncoder
from vlmalign.data.unpaired import mismatched_index, unpaired_example
from vlmalign.errors import ConfigError, DataError

FORMATS = {".parquet": "parquet", ".json": "json", ".jsonl": "json"}
HASHED_BYTES = 64 * 2**20  # files up to this size are content-hashed for its identity; larger: size + mtime


def expand_files(spec: str | Sequence[str] | None, key: str) -> list[Path]:
    """``spec`` (a path, a glob, or a list of them) as existing files, in a fixed order."""
    if spec is None:
        return []
    paths: list[Path] = []
    for item in [spec] if isinstance(spec, (str, Path)) else list(spec):
        item = str(Path(str(item)).expanduser())
        matches = sorted(glob.glob(item)) if glob.has_magic(item) else [item]
        if not matches or not all(Path(m).is_file() for m in matches):
            raise ConfigError(f"{key}={item!r}: no such file" + (" (the glob matches nothing)" if not matches else ""))
        paths += [Path(m).resolve() for m in matches]
    return paths


def file_format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in set(FORMATS.values()):
            raise ConfigError(f"data.format={fmt!r} is not one of {sorted(set(FORMATS.values()))}")
        return fmt
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise ConfigError(f"cannot tell the format of {path} from its extension; set data.format=parquet|json")
    return found


def file_identity(path: Path) -> dict[str, Any]:
    """What fixes a file's content for the reference cache: size and mtime, and a SHA-256 when it is small."""
    stat = path.stat()
    out: dict[str, Any] = {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if stat.st_size <= HASHED_BYTES:
        out["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return out


class FileRows:
    """The rows of one file, readable by index after ``__iter__`` has passed over them once."""

    def __init__(self, path: Path, fmt: str, streaming: bool, cache_dir: str | None) -> None:
        import datasets  # heavy; only when a file dataset is used

        self.path, self.streaming = path, streaming
        self._kept: dict[int, Mapping] = {}
        try:
            data = datasets.load_dataset(fmt, data_files=str(path), split="train", streaming=streaming,
                                         cache_dir=cache_dir)
        except Exception as error:  # noqa: BLE001 - datasets/pyarrow raise many types for a malformed file
            raise DataError(f"{path}: cannot be read as {fmt} ({type(error).__name__}: {error})") from error
        if streaming:  # JSON streams have no declared features, so nothing to decode
            self._data = data.decode(False) if data.features else data
        else:
            self._data = data.with_format("arrow")

    def __iter__(self) -> Iterator[tuple[int, Mapping]]:
        try:
            if self.streaming:
                yield from enumerate(self._data)
            else:
                start = 0
                for table in self._data.iter(batch_size=256):
                    for offset, row in enumerate(table.to_pylist()):
                        yield start + offset, row
                    start += table.num_rows
        except DataError:
            raise
        except Exception as error:  # noqa: BLE001 - a malformed line deep in a file surfaces while streaming
            raise DataError(f"{self.path}: cannot be read ({type(error).__name__}: {error})") from error

    def keep(self, index: int, row: Mapping) -> None:
        if self.streaming:
            self._kept[index] = row

    def __getitem__(self, index: int) -> Mapping:
        if self.streaming:
            return self._kept[index]
        return self._data[index].to_pylist()[0]


@dataclass(frozen=True)
class DataFile:
    rows: FileRows
    tag: str  # "train" or "val": which configured file list it came from (keeps sample ids unique)
    image_root: Path

    @property
    def path(self) -> Path:
        return self.rows.path


@dataclass(frozen=True)
class ExampleRef:
    file: int
    row: int
    record: int
    sample_id: str


def where(file: DataFile, index: int, adapter: Adapter, row: Mapping | None, record: Record | None = None) -> str:
    text = f"{file.path}: row {index}"
    row_id = adapter.row_id(row) if row is not None else None
    text += f" (id {row_id})" if row_id is not None else ""
    return text + (f" pair {record.key}" if record is not None and record.key else "")


def scan(files: Sequence[DataFile], adapter: Adapter, policy: RowPolicy, check_images: bool
         ) -> tuple[list[ExampleRef], Counter, list[int]]:
    """(usable examples, what the format dropped, rows per file): every row checked, bad ones through ``policy``."""
    refs: list[ExampleRef] = []
    dropped: Counter = Counter()
    sizes = []
    for number, file in enumerate(files):
        rows = 0
        for index, row in file.rows:
            rows += 1
            try:
                records, stats = adapter.scan(row)
                dropped.update(stats)
                shared = records and all(r.image is records[0].image for r in records)
                if shared:  # one image for every record of the row (VLFeedback's pairs): check it once
                    _check_image(records[0].image, file.image_root, check_images)
            except RowError as error:
                policy.handle(error.at(where(file, index, adapter, row)))
                continue
            kept = False
            for sub, record in enumerate(records):
                try:
                    check_record(record.responses, record.dialogue)
                    if not shared:
                        _check_image(record.image, file.image_root, check_images)
                except RowError as error:
                    policy.handle(error.at(where(file, index, adapter, row, record)))
                    continue
                key = f":{record.key}" if record.key else ""
                refs.append(ExampleRef(number, index, sub, f"{file.tag}/{file.path.name}:{index}{key}"))
                kept = True
            if kept:
                file.rows.keep(index, row)
        sizes.append(rows)
    return refs, dropped, sizes


def _check_image(value: Any, image_root: Path, check_images: bool) -> None:
    source = resolve_image(value, image_root)
    if check_images:
        open_image(source, check_only=True)


class FileExamples(Dataset):
    """``refs[i]`` encoded: the row re-read, its record rebuilt by the adapter, the image decoded."""

    def __init__(self, encoder: SequenceEncoder, adapter: Adapter, files: Sequence[DataFile],
                 refs: Sequence[ExampleRef]) -> None:
        self.encoder, self.adapter, self.files, self.refs = encoder, adapter, list(files), list(refs)

    def __len__(self) -> int:
        return len(self.refs)

    def record(self, index: int) -> tuple[DataFile, ExampleRef, Mapping, Record]:
        ref = self.refs[index]
        file = self.files[ref.file]
        row = file.rows[ref.row]
        return file, ref, row, self.adapter.records(row)[ref.record]

    def text_length(self, index: int) -> int:
        """Text tokens of the prompt, every response and the dialogue's turns; the image is not opened."""
        _, _, _, record = self.record(index)
        # A dialogue's first question is the prompt itself (Record's docstring): counted once.
        turns = [text for turn in record.dialogue for text in turn][1:]
        return self.encoder.text_length(record.prompt, [*record.responses.values(), *turns])

    def image(self, file: DataFile, ref: ExampleRef, row: Mapping, record: Record):
        try:
            return open_image(resolve_image(record.image, file.image_root))
        except RowError as error:  # a file changed since the check, or check_images=false
            raise error.at(where(file, ref.row, self.adapter, row, record)) from None

    def __getitem__(self, index: int) -> EncodedExample:
        file, ref, row, record = self.record(index)
        image = self.image(file, ref, row, record)
        dialogues = {"chosen": record.dialogue} if record.dialogue else None
        meta = {**record.meta, "source": f"{file.path}:{ref.row}"}
        return self.encoder.encode(ref.sample_id, image, record.prompt, record.responses, meta, dialogues)


class UnpairedFileExamples(FileExamples):
    """Unpaired (KTO) examples: record i's one labelled response, and record i+1's response as its ``mismatched``
    view (``vlmalign.data.unpaired``)."""

    def labels(self) -> list[bool]:
        return ["desirable" in self.record(index)[3].responses for index in range(len(self))]

    def completion(self, index: int) -> str:
        (text,) = self.record(index)[3].responses.values()
        return text

    def text_length(self, index: int) -> int:
        _, _, _, record = self.record(index)
        return self.encoder.text_length(record.prompt, [self.completion(index),
                                                        self.completion(mismatched_index(index, len(self)))])

    def __getitem__(self, index: int) -> EncodedExample:
        file, ref, row, record = self.record(index)
        meta = {**record.meta, "source": f"{file.path}:{ref.row}"}
        return unpaired_example(self.encoder, ref.sample_id, self.image(file, ref, row, record), record.prompt,
                                self.completion(index), "desirable" in record.responses,
                                self.completion(mismatched_index(index, len(self))), meta)
