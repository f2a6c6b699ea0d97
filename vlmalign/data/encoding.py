"""Turn (image, prompt, responses) into token ids, labels and pixels through the model's processor.

The prompt goes through the processor's chat template and image handling, so the image placeholder
is expanded to exactly the number of image tokens the model expects. Prompt positions get
``IGNORE_INDEX`` labels: the loss and every log-prob are over response tokens only.

Truncation never cuts the prompt (and so never the image span, the TRL/LLaMA-Factory crash
"Image features and image tokens do not match"): a prompt that does not fit is a clear error; only
the response tail may be cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from PIL import Image
from torch import Tensor

from vlmalign.errors import DataError


@dataclass
class EncodedExample:
    """One image + prompt with one or more tokenised responses (chosen, rejected, ...)."""

    sample_id: str
    pixel_values: Tensor  # (C, H, W)
    prompt_ids: list[int]
    responses: dict[str, list[int]]
    meta: dict = field(default_factory=dict)


class SequenceEncoder:
    def __init__(self, processor, max_length: int) -> None:
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.max_length = int(max_length)
        if self.max_length < 2:
            raise DataError(f"data.max_length={max_length} must be at least 2")

    def prompt_text(self, prompt: str) -> str:
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def encode_prompt(self, image: Image.Image, prompt: str) -> tuple[list[int], Tensor]:
        out = self.processor(text=[self.prompt_text(prompt)], images=[image], return_tensors="pt")
        return out["input_ids"][0].tolist(), out["pixel_values"][0]

    def encode_response(self, text: str) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids + [self.tokenizer.eos_token_id]

    def encode(
        self, sample_id: str, image: Image.Image, prompt: str, responses: dict[str, str], meta: dict | None = None
    ) -> EncodedExample:
        prompt_ids, pixels = self.encode_prompt(image, prompt)
        room = self.max_length - len(prompt_ids)
        if room < 1:
            raise DataError(
                f"sample {sample_id!r}: the prompt is {len(prompt_ids)} tokens (image placeholders included) but "
                f"data.max_length={self.max_length}. Truncating it would cut the image span; raise data.max_length "
                f"to at least {len(prompt_ids) + 1} or shorten the prompt."
            )
        encoded = {}
        for view, text in responses.items():
            if not text or not text.strip():
                raise DataError(f"sample {sample_id!r}: response {view!r} is empty")
            encoded[view] = self.encode_response(text)[:room]
        return EncodedExample(sample_id, pixels, prompt_ids, encoded, meta or {})


def pad_sequences(sequences: list[list[int]], pad_id: int, side: str = "right") -> tuple[Tensor, Tensor]:
    """(B, T) ids and attention mask, padded on ``side``."""
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, seq in enumerate(sequences):
        span = slice(length - len(seq), length) if side == "left" else slice(0, len(seq))
        ids[row, span] = torch.tensor(seq, dtype=torch.long)
        mask[row, span] = 1
    return ids, mask
