"""Turn (image, prompt, responses) into token ids, labels and pixels through the model's processor.

The prompt goes through the processor's chat template and image handling, so the image placeholder
is expanded to exactly the number of image tokens the model expects. Prompt positions get
``IGNORE_INDEX`` labels: the loss and every log-prob are over response tokens only.

Truncation never cuts the prompt (and so never the image span, the TRL/LLaMA-Factory crash
"Image features and image tokens do not match"): a prompt that does not fit is a clear error; only
the response tail may be cut.

Multi-turn dialogues (nSFT's corrective conversations, arXiv 2411.14797) are encoded turn by turn
with the same chat template: the first user turn holds the image and its question, later user turns
are text; labels cover the assistant answers (and their end-of-turn token) only, never user text,
image tokens or padding. A dialogue longer than ``max_length`` loses whole trailing turns; one whose
first turn does not fit is a DataError (its image span cannot be cut).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from PIL import Image
from torch import Tensor

from vlmalign.errors import DataError
from vlmalign.models.image_inputs import ImageInputs, PixelLayout, layout_for, split_outputs
from vlmalign.models.logprobs import IGNORE_INDEX

Dialogue = Sequence[tuple[str, str]]  # (user question, assistant answer) per turn; the image goes with the first


@dataclass
class LabelledSequence:
    """A whole token sequence with its own labels (a multi-turn view): ``IGNORE_INDEX`` off the answers."""

    input_ids: list[int]
    labels: list[int]
    num_turns: int = 0  # answered turns kept (0: nothing labelled)
    dropped_turns: int = 0  # trailing turns cut to fit max_length


@dataclass
class EncodedExample:
    """One image + prompt with one or more tokenised responses (chosen, rejected, ...), and optionally
    dialogues about the same image that carry their own token sequence and labels (nSFT's negatives)."""

    sample_id: str
    pixel_values: Tensor  # (C, H, W); for other layouts what the processor gives for one image (pixel_layout)
    prompt_ids: list[int]
    responses: dict[str, list[int]]
    meta: dict = field(default_factory=dict)
    dialogues: dict[str, LabelledSequence] = field(default_factory=dict)  # views that carry their own sequence
    # Extra per-image processor outputs (Qwen2-VL's image_grid_thw, Idefics3's pixel_attention_mask) and how
    # the collator batches and corrupts them (vlmalign.models.image_inputs); empty / None for (C, H, W) pixels.
    image_inputs: ImageInputs = field(default_factory=dict)
    pixel_layout: PixelLayout | None = None
    # Synth² (arXiv 2403.07750): a synthetic sample has no pixels, only the vision-space embedding a generator
    # made for its caption; it enters the model at the projector (pixel_values is None then).
    vision_embedding: Tensor | None = None

    def tokens(self, key: str) -> tuple[list[int], list[int]]:
        """(input ids, labels) of response or dialogue ``key``: prompt + response with the prompt masked,
        or the dialogue's own sequence."""
        if key in self.dialogues:
            return self.dialogues[key].input_ids, self.dialogues[key].labels
        if key not in self.responses:
            raise DataError(f"sample {self.sample_id!r} has no response or dialogue {key!r}; it has "
                            f"{sorted([*self.responses, *self.dialogues])}")
        response = self.responses[key]
        return self.prompt_ids + response, [IGNORE_INDEX] * len(self.prompt_ids) + response


class SequenceEncoder:
    def __init__(self, processor, max_length: int) -> None:
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.max_length = int(max_length)
        self._placeholder_prompts: dict = {}  # (prompt, canvas size) -> encode_prompt_inputs, for encode_embedded
        if self.max_length < 2:
            raise DataError(f"data.max_length={max_length} must be at least 2")

    def prompt_text(self, prompt: str) -> str:
        return self.render([_user(prompt, with_image=True)], add_generation_prompt=True)

    def render(self, messages: list[dict], add_generation_prompt: bool) -> str:
        return self.processor.apply_chat_template(messages, add_generation_prompt=add_generation_prompt,
                                                  tokenize=False)

    def encode_prompt(self, image: Image.Image, prompt: str) -> tuple[list[int], Tensor]:
        ids, pixels, _, _ = self.encode_prompt_inputs(image, prompt)
        return ids, pixels

    def encode_prompt_inputs(
        self, image: Image.Image, prompt: str
    ) -> tuple[list[int], Tensor, ImageInputs, PixelLayout | None]:
        """Prompt ids, the image's pixel_values and extra image tensors, and their layout (None: (C, H, W))."""
        out = self.processor(text=[self.prompt_text(prompt)], images=[image], return_tensors="pt")
        layout = layout_for(self.processor, out)
        pixels, extras = split_outputs(out, layout)
        return out["input_ids"][0].tolist(), pixels, extras, layout

    def encode_embedded(self, sample_id: str, embedding: Tensor, prompt: str, responses: dict[str, str],
                        blank: Image.Image) -> EncodedExample:
        """An example whose image is a vision-space ``embedding`` (tokens, dim) instead of pixels (Synth²).

        The prompt is encoded with ``blank`` (a canvas of the model's input size) so the processor expands the
        image placeholder exactly as for a real image; its pixels are dropped. That encoding depends on the
        prompt only, so it is done once per prompt, not per sample. The span must hold one token per embedding
        row, or the embedding was made for another model.
        """
        key = (prompt, blank.size)
        if key not in self._placeholder_prompts:
            self._placeholder_prompts[key] = self.encode_prompt_inputs(blank, prompt)
        example = self.encode(sample_id, blank, prompt, responses, prompt_inputs=self._placeholder_prompts[key])
        image_tokens = sum(t == self.processor.image_token_id for t in example.prompt_ids)
        if image_tokens != embedding.shape[0]:
            raise DataError(f"sample {sample_id!r}: the embedding has {embedding.shape[0]} tokens but the model's "
                            f"prompt has {image_tokens} image placeholders: the generator was made for another model")
        example.pixel_values, example.vision_embedding = None, embedding
        return example

    def encode_response(self, text: str) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids + [self.tokenizer.eos_token_id]

    def text_length(self, prompt: str, responses: list[str]) -> int:
        """Tokens of the prompt's text and of every response (+ EOS each), without the image: what varies between
        examples, to group them by length (``vlmalign.data.length_grouping``) without decoding any image."""
        counts = self.tokenizer([prompt, *responses], add_special_tokens=False)["input_ids"]
        return sum(map(len, counts)) + len(responses)

    def encode(
        self,
        sample_id: str,
        image: Image.Image,
        prompt: str,
        responses: dict[str, str],
        meta: dict | None = None,
        dialogues: Mapping[str, Dialogue] | None = None,
        prompt_inputs: tuple | None = None,
    ) -> EncodedExample:
        """``responses`` answer ``prompt`` in one turn; each of ``dialogues`` is a conversation of its own
        about the same image (an empty one becomes the prompt with nothing labelled: see ``encode_dialogue``).
        ``prompt_inputs``: ``encode_prompt_inputs(image, prompt)`` when the caller already has it."""
        prompt_ids, pixels, image_inputs, layout = prompt_inputs or self.encode_prompt_inputs(image, prompt)
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
        encoded_dialogues = {view: self.encode_dialogue(sample_id, image, turns, prompt_ids)
                             for view, turns in (dialogues or {}).items()}
        return EncodedExample(sample_id, pixels, prompt_ids, encoded, meta or {}, encoded_dialogues, image_inputs,
                              layout)

    def encode_dialogue(
        self, sample_id: str, image: Image.Image, turns: Dialogue, empty_prompt_ids: list[int]
    ) -> LabelledSequence:
        """One dialogue about ``image``: labels on the answers only, whole trailing turns dropped to fit.

        A dialogue with no turns becomes ``empty_prompt_ids`` (the sample's own first turn, image
        included, so the row still has its image placeholders) with every label masked: it has no
        labelled token and so contributes nothing to a token-mean loss.
        """
        if not turns:
            return LabelledSequence(list(empty_prompt_ids), [IGNORE_INDEX] * len(empty_prompt_ids))
        input_ids: list[int] = []
        labels: list[int] = []
        history: list[dict] = []
        for index, (question, answer) in enumerate(turns):
            if not question.strip() or not answer.strip():
                raise DataError(f"sample {sample_id!r}: dialogue turn {index} has an empty question or answer")
            if index == 0:  # through the processor, which expands the image placeholder (pixels: as the prompt's)
                user_ids, _ = self.encode_prompt(image, question)
            else:
                user_ids = self.tokenizer(self.next_user_text(history, question), add_special_tokens=False)["input_ids"]
            answer_ids = self.encode_response(answer)
            if len(input_ids) + len(user_ids) + len(answer_ids) > self.max_length:
                if index == 0:
                    raise DataError(
                        f"sample {sample_id!r}: the first dialogue turn is {len(user_ids) + len(answer_ids)} tokens "
                        f"(image placeholders included) but data.max_length={self.max_length}. Whole trailing turns "
                        "may be dropped, but not the first (its image span cannot be cut); raise data.max_length."
                    )
                return LabelledSequence(input_ids, labels, index, len(turns) - index)
            input_ids += user_ids + answer_ids
            labels += [IGNORE_INDEX] * len(user_ids) + answer_ids
            history += [_user(question, with_image=index == 0), _assistant(answer)]
        return LabelledSequence(input_ids, labels, len(turns))

    def next_user_text(self, history: list[dict], question: str) -> str:
        """What the chat template adds after a finished ``history`` for the next user turn, up to and
        including the assistant's generation prompt (the same text a one-turn prompt ends with).

        The answer tokens themselves come from ``encode_response`` (text + EOS), as for one-turn
        responses, so every assistant turn ends the way the model is trained to stop generating. For the
        project's template the result is token for token the processor's encoding of the whole rendered
        dialogue (tested); a template that closes a turn with more than EOS (e.g. a newline after
        ``<|im_end|>``) loses that extra text here, exactly as one-turn responses do.
        """
        before = self.render(history, add_generation_prompt=False)
        after = self.render([*history, _user(question, with_image=False)], add_generation_prompt=True)
        if not after.startswith(before):
            raise DataError("the chat template renders a dialogue differently once a turn is added (it is not "
                            "prefix-stable), so multi-turn labels cannot be placed; use a template that appends "
                            "each turn after the previous ones")
        return after[len(before):]


def _user(text: str, with_image: bool) -> dict:
    content = [{"type": "image"}] if with_image else []
    return {"role": "user", "content": [*content, {"type": "text", "text": text}]}


def _assistant(text: str) -> dict:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


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
