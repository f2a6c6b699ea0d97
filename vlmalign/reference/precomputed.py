"""Reference log-probs computed in one pass before training and cached on disk.

The cache is keyed by a fingerprint of everything that determines its numbers: the initial model
weights, the tokenizer, the dataset description (which fixes every text and image), the views and
the corruption and its seed (mDPO's m' must be the one the policy sees). A changed input means a
new key, so a stale cache is never used; a truncated or unreadable file is rebuilt.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch.utils.data import DataLoader

from vlmalign.distributed.zero3 import gathered
from vlmalign.errors import ConfigError
from vlmalign.logps import ResponseLogProbs
from vlmalign.models.weights import tokenizer_digest, weights_digest
from vlmalign.reference.base import ReferencePolicy, batch_device
from vlmalign.reference.frozen import reference_view_logps
from vlmalign.utils.files import digest_problem, fingerprint, locked, write_file_atomic

log = logging.getLogger(__name__)


def _plain(value):
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    raise TypeError(f"cannot fingerprint {type(value).__name__} in the reference-cache key")


class PrecomputedReference(ReferencePolicy):
    name = "precomputed"

    def __init__(self, cache_dir: str, batch_size: int = 32) -> None:
        self.cache_dir = Path(cache_dir)
        self.batch_size = batch_size
        self.table: dict[str, dict[str, tuple[float, int]]] | None = None
        self.path: Path | None = None

    def cache_key(self, datamodule, views: tuple[str, ...]) -> str:
        """Canonical JSON: stored in the file as a plain string, so ``torch.load(weights_only=True)``
        reads it back whatever types the data description held (e.g. OmegaConf containers)."""
        backbone = self.module.backbone
        key = {
            "weights": weights_digest(backbone),
            "tokenizer": tokenizer_digest(backbone.processor.tokenizer),
            "data": datamodule.identity(),
            "views": sorted(views),
        }
        return json.dumps(key, sort_keys=True, default=_plain)

    def prepare(self, datamodule, views: tuple[str, ...], device=None) -> None:
        # A policy built as ZeRO-3 shards (distributed.zero3_init) is gathered whole for the digest and the pass;
        # gathering is collective, so it wraps the file lock (one rank computes while the others wait on the lock).
        with gathered(self.module.backbone):
            key = self.cache_key(datamodule, views)
            self.path = self.cache_dir / f"reflogps-{fingerprint(key)}.pt"
            with locked(self.path):
                self.table = self._load(key) if self.path.exists() else None
                if self.table is None:
                    self.table = self._compute(datamodule, views, device)
                    payload = {"key": key, "table": self.table}
                    write_file_atomic(self.path, lambda handle: torch.save(payload, handle), checksum=True)
                    log.info("reference cache written: %s (%d samples)", self.path, len(self.table))

    def _load(self, key: str):
        """The cached table, or None (rebuild) when the file fails its checksum, has none, cannot be read or
        was written for another key. Every cache is written with its digest beside it from the start
        (``write_file_atomic``), so one without is not ours to trust: its digest was deleted, or it was
        copied in without one, and hashing it now would vouch for whatever it holds."""
        problem = digest_problem(self.path)
        if problem:
            log.warning("reference cache %s: %s; rebuilding", self.path, problem)
            return None
        try:
            payload = torch.load(self.path, weights_only=True)
        except Exception as error:  # truncated or corrupt: rebuild, never trust
            log.warning("reference cache %s is unreadable (%s); rebuilding", self.path, error)
            return None
        if payload.get("key") != key:
            return None
        return payload["table"]

    def _compute(self, datamodule, views: tuple[str, ...], device) -> dict:
        backbone = self.module.backbone
        was_training = backbone.training
        backbone.eval()
        device = device or next(backbone.parameters()).device
        table: dict[str, dict[str, tuple[float, int]]] = {}
        try:
            for dataset in datamodule.reference_datasets():
                loader = DataLoader(dataset, batch_size=self.batch_size, collate_fn=datamodule.collator)
                for batch in loader:
                    batch = _to(batch, device)
                    logps = reference_view_logps(backbone, batch, views, self.module.share_prefix)
                    for row, sample_id in enumerate(batch["sample_ids"]):
                        table[sample_id] = {v: (float(lp.sum[row]), int(lp.count[row])) for v, lp in logps.items()}
        finally:
            backbone.train(was_training)
        return table

    def logps(self, batch: dict, views: tuple[str, ...]) -> dict[str, ResponseLogProbs]:
        if self.table is None:
            raise ConfigError("reference=precomputed was not prepared before training (call prepare first)")
        missing = [s for s in batch["sample_ids"] if s not in self.table]
        if missing:
            raise ConfigError(f"reference cache {self.path} has no entry for samples {missing[:3]}; "
                              "it was built for other data")
        device = batch_device(batch)
        out = {}
        for view in views:
            rows = [self.table[s][view] for s in batch["sample_ids"]]
            out[view] = ResponseLogProbs(torch.tensor([r[0] for r in rows], device=device),
                                         torch.tensor([r[1] for r in rows], device=device))
        return out


def _to(batch: dict, device) -> dict:
    from pytorch_lightning.utilities import move_data_to_device

    return move_data_to_device(batch, device)
