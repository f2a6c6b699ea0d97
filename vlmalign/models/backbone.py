"""One wrapper around any HF image-text-to-text model: the only place that knows its internals.

The module asks it for two things: image features (computed once per unique image) and response
log-probs (or the response-position hidden states they come from) of token sequences that reuse
those features. transformers passes precomputed features
through ``mm_encoder_outputs``, which is what lets chosen, rejected and every other view of one
image share a single vision-tower pass (DESIGN.md, "Performance levers").
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from transformers.modeling_outputs import BaseModelOutputWithPooling

from vlmalign.models.logprobs import ResponseLogProbs, ResponseStates, response_states, states_logps
from vlmalign.models.prefix_sharing import PackedViews


class VisionLanguageBackbone(nn.Module):
    """An HF VLM (optionally a PEFT model around it) plus its processor."""

    def __init__(self, model: nn.Module, processor, name: str) -> None:
        super().__init__()
        self.model = model
        self.processor = processor
        self.name = name

    @property
    def core(self) -> nn.Module:
        """The ``*ForConditionalGeneration`` module, below any PEFT wrapper (LoRA layers stay injected)."""
        get_base = getattr(self.model, "get_base_model", None)
        return get_base() if get_base is not None else self.model

    @property
    def is_lora(self) -> bool:
        return hasattr(self.model, "peft_config")

    @property
    def pad_token_id(self) -> int:
        return self.processor.tokenizer.pad_token_id

    @property
    def image_token_id(self) -> int:
        return self.core.config.image_token_id

    def encode_images(self, pixel_values: Tensor) -> list[Tensor]:
        """Vision tower + projector, one (tokens, hidden) tensor per image."""
        return list(self.core.model.get_image_features(pixel_values=pixel_values).pooler_output)

    def response_states(
        self, input_ids: Tensor, attention_mask: Tensor, labels: Tensor, image_features: list[Tensor]
    ) -> ResponseStates:
        """Hidden states at the response positions (and the head that projects them); row i of the batch
        uses ``image_features[i]`` for its image placeholders."""
        encoder_outputs = None
        if image_features:
            encoder_outputs = {"image": BaseModelOutputWithPooling(pooler_output=image_features)}
        hidden = self.core.model(
            input_ids=input_ids, attention_mask=attention_mask, mm_encoder_outputs=encoder_outputs
        ).last_hidden_state
        return response_states(hidden, labels, head=self.core.get_output_embeddings())

    @property
    def can_share_prefix(self) -> bool:
        """Packed prefix sharing passes a 4-D attention mask, which the sdpa and eager attention kernels take;
        flash-attention-2 and friends only take padding masks, so those models run the plain forward."""
        return self.core.config._attn_implementation in ("sdpa", "eager")

    def shared_prefix_states(self, packed: PackedViews, image_features: list[Tensor]) -> ResponseStates:
        """``response_states`` of the unpacked rows, from one forward of the packed rows
        (``vlmalign.models.prefix_sharing``): each image + prompt prefix runs once."""
        features = [image_features[i] for i in packed.images]
        encoder_outputs = {"image": BaseModelOutputWithPooling(pooler_output=features)}
        hidden = self.core.model(
            input_ids=packed.input_ids,
            attention_mask=packed.attention_mask(self.core.dtype),
            position_ids=packed.position_ids,
            mm_encoder_outputs=encoder_outputs,
        ).last_hidden_state
        return ResponseStates(hidden[packed.predictor_group, packed.predictor_position], packed.targets,
                              packed.target_row, packed.num_rows, self.core.get_output_embeddings())

    def response_logps(
        self, input_ids: Tensor, attention_mask: Tensor, labels: Tensor, image_features: list[Tensor]
    ) -> ResponseLogProbs:
        """Summed response log-probs; row i uses ``image_features[i]`` for its image placeholders."""
        return states_logps(self.response_states(input_ids, attention_mask, labels, image_features))

    @torch.no_grad()
    def generate(self, input_ids: Tensor, attention_mask: Tensor, pixel_values: Tensor, **kwargs) -> Tensor:
        """New tokens only (left-padded prompts)."""
        out = self.core.generate(
            input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values, **kwargs
        )
        return out[:, input_ids.shape[1] :]

    def save_pretrained(self, directory: str | Path, merge_lora: bool = False) -> None:
        """HF-format export loadable by plain ``transformers`` (LoRA merged on request)."""
        model = self.model
        if self.is_lora and merge_lora:
            model = model.merge_and_unload()
        model.save_pretrained(directory)
        self.processor.save_pretrained(directory)
