"""Batched greedy generation for evaluation (left-padded prompts, one image each)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from vlmalign.data.encoding import SequenceEncoder, pad_sequences
from vlmalign.models.backbone import VisionLanguageBackbone


@torch.no_grad()
def generate_responses(
    backbone: VisionLanguageBackbone,
    images: Sequence[Image.Image],
    prompts: Sequence[str],
    max_new_tokens: int,
    batch_size: int = 64,
) -> list[str]:
    """Greedy (T = 0) responses, decoded without special tokens, in input order."""
    encoder = SequenceEncoder(backbone.processor, max_length=10**6)
    tokenizer = backbone.processor.tokenizer
    device = next(backbone.parameters()).device
    was_training = backbone.training
    backbone.eval()
    responses: list[str] = []
    try:
        for start in range(0, len(prompts), batch_size):
            encoded = [encoder.encode_prompt(img, p) for img, p in zip(images[start : start + batch_size],
                                                                     prompts[start : start + batch_size])]
            input_ids, attention_mask = pad_sequences([ids for ids, _ in encoded], tokenizer.pad_token_id, "left")
            pixel_values = torch.stack([px for _, px in encoded])
            new_tokens = backbone.generate(
                input_ids.to(device),
                attention_mask.to(device),
                pixel_values.to(device, dtype=next(backbone.parameters()).dtype),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            responses.extend(t.strip() for t in tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
    finally:
        backbone.train(was_training)
    return responses
