"""Batched generation with the KV cache (left-padded prompts, one image each): greedy for evaluation, sampled text
for RLAIF-V, sampled token ids for online RL's rollouts."""

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
def _generate_ids(backbone: VisionLanguageBackbone, images: Sequence[Image.Image], prompts: Sequence[str],
                  batch_size: int, seed: int | None = None, **generate_kwargs) -> list[torch.Tensor]:
    """New token ids of every returned sequence (padded after its EOS), in input order (``num_return_sequences``
    per prompt, consecutive). With ``seed``, batch b samples from a generator seeded by (seed, b), so a rerun, or a
    resumed run, gives the same tokens whatever ran before it in the process."""
    encoder = SequenceEncoder(backbone.processor, max_length=10**6)
    tokenizer = backbone.processor.tokenizer
    parameter = next(backbone.parameters())
    was_training = backbone.training
    backbone.eval()
    sequences: list[torch.Tensor] = []
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
            sequences.extend(new_tokens)
    finally:
        backbone.train(was_training)
    return sequences


def _generate(backbone: VisionLanguageBackbone, images: Sequence[Image.Image], prompts: Sequence[str],
              batch_size: int, seed: int | None = None, **generate_kwargs) -> list[str]:
    """Decoded new text of every returned sequence, in input order (``_generate_ids``)."""
    sequences = _generate_ids(backbone, images, prompts, batch_size, seed, **generate_kwargs)
    tokenizer = backbone.processor.tokenizer
    return [t.strip() for t in tokenizer.batch_decode(sequences, skip_special_tokens=True)] if sequences else []


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
    flat = _generate(backbone, images, prompts, **_sampling(num_samples, temperature, 1.0, max_new_tokens, seed,
                                                               batch_size))
    return [flat[i : i + num_samples] for i in range(0, len(flat), num_samples)]


def _sampling(num_samples: int, temperature: float, top_p: float, max_new_tokens: int, seed: int,
              batch_size: int) -> dict:
    """``_generate``'s arguments for ``num_samples`` draws per prompt at ``temperature`` with nucleus ``top_p``
    (no top-k cut), checked."""
    if num_samples < 1 or temperature <= 0 or not 0 < top_p <= 1 or max_new_tokens < 1:
        raise ValueError(f"num_samples={num_samples} and max_new_tokens={max_new_tokens} must be >= 1, "
                         f"temperature={temperature} > 0 and top_p={top_p} in (0, 1]")
    return dict(batch_size=max(1, batch_size // num_samples),  # batch_size counts returned sequences
                seed=seed, max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature, top_k=0,
                top_p=top_p, num_return_sequences=num_samples)


def sample_token_ids(
    backbone: VisionLanguageBackbone,
    images: Sequence[Image.Image],
    prompts: Sequence[str],
    num_samples: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    seed: int,
    batch_size: int = 64,
) -> list[list[int]]:
    """``num_samples`` sampled responses per prompt as token ids (online RL's rollouts), the samples of a prompt
    consecutive, in input order. A response runs up to and including its first EOS, or is all ``max_new_tokens``
    tokens when it never stops (cut off: no EOS). Reproducible by ``seed`` as ``sample_responses``.

    The image placeholder token is never sampled: a response holding one would, once trained on, hand the model
    one more image token than the image has features ("image features and image tokens do not match"); a small
    or early policy does sample it (seen on the tiny model)."""
    eos = backbone.processor.tokenizer.eos_token_id
    responses = []
    settings = _sampling(num_samples, temperature, top_p, max_new_tokens, seed, batch_size)
    for tokens in _generate_ids(backbone, images, prompts, suppress_tokens=[backbone.image_token_id], **settings):
        ids = tokens.tolist()
        responses.append(ids[: ids.index(eos) + 1] if eos in ids else ids)
    return responses
