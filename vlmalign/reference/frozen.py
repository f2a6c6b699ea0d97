"""Frozen copy of the initial policy: the textbook DPO reference (two models resident)."""

from __future__ import annotations

import copy

import torch

from vlmalign.distributed.zero3 import shard_reference
from vlmalign.logps import ResponseLogProbs
from vlmalign.models.logprobs import ResponseStates
from vlmalign.models.views import view_logps, view_states
from vlmalign.reference.base import ReferencePolicy, batch_device


def reference_view_logps(
    backbone, batch: dict, views: tuple[str, ...], share_prefix: bool = True
) -> dict[str, ResponseLogProbs]:
    """view_logps without gradients, detached (the reference never trains)."""
    with torch.no_grad():
        return {view: lp.detach() for view, lp in view_logps(backbone, batch, views, share_prefix).items()}


def reference_view_states(
    backbone, batch: dict, views: tuple[str, ...], share_prefix: bool = True
) -> dict[str, ResponseStates]:
    """view_states without gradients (the head is applied later, chunk by chunk, also without them)."""
    with torch.no_grad():
        return view_states(backbone, batch, views, share_prefix)


class FrozenCopyReference(ReferencePolicy):
    name = "frozen"
    provides_states = True

    def setup(self, module) -> None:
        super().setup(module)
        # Kept off the LightningModule's module tree: not trained, not checkpointed (rebuilt from the base).
        self.backbone = copy.deepcopy(module.backbone).eval()
        for parameter in self.backbone.parameters():
            parameter.requires_grad_(False)

    def _ready(self, device) -> None:
        # Under ZeRO-3 the copy gets its own ZeRO-3 inference engine on first use, sharded like the policy
        # (vlmalign/distributed/zero3.py); otherwise it just follows the batch's device.
        self.backbone = shard_reference(self.backbone, self.module)
        # Module.to walks every submodule (~2.5 ms a step on the issue-9 model, 2% of a DPO step): only on a move.
        if not getattr(self.backbone, "_vlmalign_sharded", False) and next(self.backbone.parameters()).device != device:
            self.backbone.to(device)

    def logps(self, batch: dict, views: tuple[str, ...]) -> dict[str, ResponseLogProbs]:
        self._ready(batch_device(batch))
        return reference_view_logps(self.backbone, batch, views, self.module.share_prefix)

    def states(self, batch: dict, views: tuple[str, ...]) -> dict[str, ResponseStates]:
        self._ready(batch_device(batch))
        return reference_view_states(self.backbone, batch, views, self.module.share_prefix)
