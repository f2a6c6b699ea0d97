"""A model's identity by its weights and its tokenizer: what fixes every cache computed from a policy (reference
log-probs, on-policy pairs), what a Synth² generator checks its vision tower against and what a reward model is
checked against before it scores a policy's token ids."""

from __future__ import annotations

import hashlib

import torch

from vlmalign.utils.files import fingerprint


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 (16 hex digits) over every state-dict entry's name and raw bytes, in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def tokenizer_digest(tokenizer) -> str:
    """Fingerprint of a tokenizer's vocabulary and chat template: two models whose digests agree read the same
    token ids as the same text."""
    return fingerprint([sorted(tokenizer.get_vocab().items()), getattr(tokenizer, "chat_template", None)])
