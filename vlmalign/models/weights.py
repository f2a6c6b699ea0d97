"""A model's identity by its weights: what fixes every cache computed from a policy (reference log-probs,
on-policy pairs) and what a Synth² generator checks its vision tower against."""

from __future__ import annotations

import hashlib

import torch


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 (16 hex digits) over every state-dict entry's name and raw bytes, in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]
