"""Batched generation (left-padded prompts, one image each): greedy for evaluation, sampled for RLAIF-V."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from vlmalign.data.encoding import SequenceEncoder, pad_sequences
from vlmalign.models.backbone import VisionLanguageBackbone
from vlmalign.models.image_inputs import batch_images


def encode_prompt_batch(encoder: SequenceEncoder, images: Sequence[Image.Image], prompts: Sequence[str],
                        side: str = "left", device=None, dtype=None) -> dict[str, torch.Tensor]:
    """Model inputs of (image, prompt) pairs: padded ids and mask, pixel values and the extra image tensors
    of the model's pixel layout (``vlmalign.models.image_inputs``), on ``device``."""
    encoded = [encoder.encode_prompt_inputs(image, prompt) for image, prompt in zip(images, prompts)]
    input_ids, attention_mask = pad_sequences([e[0] for e in encoded], encoder.tokenizer.pad_token_id, side)
    pixel_values, image_inputs = batch_images([e[1] for e in encoded], [e[2] for e in encoded], encoded[0][3])
    return {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device),
            "pixel_values": pixel_values.to(device, dtype=dtype),
            **{k: v.to(device) for k, v in image_inputs.items()}}


@torch.no_grad()
def _generate(backbone: VisionLanguageBackbone, images: Sequence[Image.Image], prompts: Sequence[str],
              batch_size: int, seed: int | None = None, **generate_kwargs) -> list[str]:
    """Decoded new text of every returned sequence, in input order (``num_return_sequences`` per prompt,
    consecutive). With ``seed``, batch b samples from a generator seeded by (seed, b), so a rerun, or a
    resumed run, gives the same text whatever ran before it in the process."""
    encoder = SequenceEncoder(backbone.processor, max_length=10**6)
    tokenizer = backbone.processor.tokenizer
    parameter = next(backbone.parameters())
    was_training = backbone.training
    backbone.eval()
    responses: list[str] = []
    try:
        for batch, start in enumerate(range(0, len(prompts), batch_size)):
            inputs = encode_prompt_batch(encoder, images[start : start + batch_size],
                                         prompts[start : start + batch_size], "left", parameter.device, parameter.dtype)
            if seed is not None:
                torch.manual_seed(seed * 1_000_003 + batch)  # HF sampling draws from the global generator
            new_tokens = backbone.generate(
                inputs.pop("input_ids"),
                inputs.pop("attention_mask"),
                inputs.pop("pixel_values"),
                **inputs,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                **generate_kwargs,
            )
            responses.extend(t.strip() for t in tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
    finally:
        backbone.train(was_training)
    return responses


def generate_responses(
    backbone: VisionLanguageBackbone,
    images: Sequence[Image.Image],
    prompts: Sequence[str],
    max_new_tokens: int,
    batch_size: int = 64,
) -> list[str]:
    """Greedy (T = 0) responses, decoded without special tokens, in input order."""
    return _generate(backbone, images, prompts, batch_size, max_new_tokens=max_new_tokens, do_sample=False)


def sample_responses(
    backbone: VisionLanguageBackbone,
    images: Sequence[Image.Image],
    prompts: Sequence[str],
    num_samples: int,
    temperature: float,
    max_new_tokens: int,
    seed: int,
    batch_size: int = 64,
) -> list[list[str]]:
    """``num_samples`` responses per prompt at ``temperature`` (RLAIF-V samples at T = 0.7), reproducible by
    ``seed``: one list per prompt, in input order."""
    if num_samples < 1 or temperature <= 0:
        raise ValueError(f"num_samples={num_samples} must be >= 1 and temperature={temperature} > 0")
    per_batch = max(1, batch_size // num_samples)  # batch_size counts returned sequences
    flat = _generate(backbone, images, prompts, per_batch, seed=seed, max_new_tokens=max_new_tokens, do_sample=True,
                     temperature=temperature, top_k=0, top_p=1.0, num_return_sequences=num_samples)
    return [flat[i : i + num_samples] for i in range(0, len(flat), num_samples)]
