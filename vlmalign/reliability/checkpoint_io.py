"""Lightning checkpoints written atomically with a SHA-256 beside them, and verified before loading.

Lightning's own ``TorchCheckpointIO`` writes the file in place: a run killed mid-write leaves a
truncated ``last.ckpt`` that the next ``ckpt_path=...last.ckpt`` trusts. Here the checkpoint goes to
a temporary name in the same directory, is fsynced and renamed, and only then is its digest written.
Loading checks that digest: a truncated or bit-flipped file is refused with its path, never loaded.
Checkpoints load with ``weights_only=True`` (no arbitrary code from a pickle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from vlmalign.errors import VlmalignError
from vlmalign.utils.files import DIGEST_SUFFIX, digest_problem, write_file_atomic


class CheckpointError(VlmalignError):
    """A checkpoint that must not be loaded (corrupt, truncated, missing)."""


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        try:
            write_file_atomic(path, lambda handle: torch.save(checkpoint, handle), checksum=True)
        except (OSError, RuntimeError) as error:  # disk full: torch's zip writer says "unexpected pos ..."
            raise CheckpointError(
                f"could not write checkpoint {path} ({type(error).__name__}: {str(error).splitlines()[0][:200]}; is "
                f"the disk full?). The checkpoints written before it in {Path(path).parent} are intact (each was "
                "written whole under a temporary name, then renamed); free some space and rerun with resume=true"
            ) from error

    def load_checkpoint(self, path, map_location: Any | None = None, weights_only: bool | None = None) -> dict:
        problem = checkpoint_problem(path)
        if problem:
            raise CheckpointError(f"refusing to load checkpoint: {problem}. Nothing was changed; resume from an "
                                  "earlier checkpoint of the run (checkpoints/step*.ckpt) or start again.")
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)

    def remove_checkpoint(self, path) -> None:
        super().remove_checkpoint(path)
        Path(str(path) + DIGEST_SUFFIX).unlink(missing_ok=True)


def checkpoint_problem(path) -> str | None:
    """Why a checkpoint cannot be trusted, or None. One without a digest (written elsewhere) is accepted
    only if it at least reads back as a complete archive. A DeepSpeed checkpoint is a directory of shards."""
    if Path(path).is_dir():
        from vlmalign.distributed.run import deepspeed_checkpoint_problem

        return deepspeed_checkpoint_problem(path)
    problem = digest_problem(path)
    if problem is None or not Path(path).exists():
        return problem
    if not Path(str(path) + DIGEST_SUFFIX).exists():
        try:
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # truncated zip, foreign pickle: refuse with the reason
            return f"{path} cannot be read ({type(error).__name__}: {str(error).splitlines()[0][:200]})"
        return None
    return problem
