"""RLAIF-V-Dataset (openbmb/RLAIF-V-Dataset, arXiv 2405.17220): parquet shards, one preference pair per row.

Row: ``ds_name, image ({'bytes', 'path'}), question, chosen, rejected, origin_dataset, origin_split, idx,
image_path``. The image is inline bytes; ``image_path`` (relative to ``data.image_root``) is used when
a row carries no bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vlmalign.data.adapters.base import Adapter, Record
from vlmalign.data.adapters.validation import check_pair, response_field, strip_image_placeholders, text_field


class RlaifVAdapter(Adapter):
    name = "rlaif_v"
    task = "preference"
    default_format = "parquet"
    schema = "RLAIF-V rows: image ({'bytes', 'path'}), question, chosen, rejected, idx, image_path, ..."

    def records(self, row: Mapping[str, Any]) -> list[Record]:
        prompt = strip_image_placeholders(text_field(row, "question"))
        chosen, rejected = response_field(row, "chosen"), response_field(row, "rejected")
        check_pair(chosen, rejected)
        image = row.get("image")
        if image is None or (isinstance(image, Mapping) and not (image.get("bytes") or image.get("path"))):
            image = row.get("image_path")
        meta = {k: row[k] for k in ("ds_name", "origin_dataset", "idx") if row.get(k) is not None}
        return [Record(image, prompt, {"chosen": chosen, "rejected": rejected}, meta=meta)]

    def row_id(self, row: Mapping[str, Any]) -> str | None:
        return None if row.get("idx") is None else str(row["idx"])
