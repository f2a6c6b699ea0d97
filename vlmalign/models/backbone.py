"""One wrapper around any HF image-text-to-text model: the only place that knows its internals.

The module asks it for two things: image features (computed once per unique image) and response
log-probs (or the response-position hidden states they come from) of token sequences that reuse
those features. transformers passes precomputed features
through ``mm_encoder_outputs``, which is what lets chosen, rejected and every other view of one
image share a single vision-tower pass (docs/design.md, rule 3).

Per family (checked against transformers 5.23 and tested on tiny random models of each class,
``tests/model_presets``): LLaVA, Idefics3/SmolVLM, Qwen2-VL and Qwen2.5-VL take a list of per-image
features, PaliGemma one stacked tensor. Qwen2-VL/2.5-VL rotate with 3-D (t, h, w) positions computed
from each image's patch grid, so their features keep that grid in their shape ((h, w, hidden) after the
merger) and the text forward is given ``image_grid_thw`` and ``mm_token_type_ids`` to rebuild the positions.
PaliGemma attends bidirectionally over image + prompt (``token_type_ids`` 0) and causally over the answer;
it is given those token types here (and in ``generate``), and it does not share prefixes (see
``can_share_prefix``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from transformers.modeling_outputs import BaseModelOutputWithPooling

from vlmalign.errors import ConfigError
from vlmalign.logps import ResponseLogProbs
from vlmalign.models.logprobs import IGNORE_INDEX, ResponseStates, response_states, states_logps
from vlmalign.models.prefix_sharing import PREFIX_SEGMENT, PackedViews

# Families whose text forward needs more than ids and a mask (see the module docstring).
MROPE_MODELS = frozenset({"qwen2_vl", "qwen2_5_vl"})  # 3-D rotary positions from each image's (t, h, w) grid
PREFIX_LM_MODELS = frozenset({"paligemma"})  # full attention over image + prompt, positions counted from 1
# Families whose projector maps the vision tower's selected features to the language model's image features and
# nothing else happens in between, so vision-space embeddings made elsewhere (Synth², arXiv 2403.07750) can enter
# at the projector: PaliGemma rescales after it, Idefics3 pixel-shuffles inside its connector, Qwen merges patches.
PROJECTOR_INPUT_MODELS = {"llava": "multi_modal_projector"}


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

    @property
    def model_type(self) -> str:
        return self.core.config.model_type

    def encode_images(self, pixel_values: Tensor, **image_inputs: Tensor) -> list[Tensor]:
        """Vision tower + projector, one (tokens, hidden) tensor per image; ``image_inputs`` are the processor's
        other image tensors (``image_grid_thw``, ``pixel_attention_mask``) as the collator batched them.
        Qwen2-VL/2.5-VL features come as (h, w, hidden) token grids (see the module docstring)."""
        if pixel_values.is_floating_point():  # a bf16 model is fed fp32 processor pixels
            pixel_values = pixel_values.to(self.core.dtype)
        features = list(self.core.model.get_image_features(pixel_values=pixel_values, **image_inputs).pooler_output)
        if self.model_type in MROPE_MODELS:
            merge = self.core.config.vision_config.spatial_merge_size
            features = [f.reshape(int(h) // merge, int(w) // merge, f.shape[-1])
                        for f, (_, h, w) in zip(features, image_inputs["image_grid_thw"].tolist())]
        return features

    @property
    def projector(self) -> nn.Module:
        """The module between the vision tower and the language model (Synth²'s entry point for embeddings)."""
        name = PROJECTOR_INPUT_MODELS.get(self.model_type)
        if name is None:
            raise ConfigError(
                f"model family {self.model_type!r} does not take vision-space embeddings: Synth² feeds them to the "
                f"projector, which is a plain separate module only in {sorted(PROJECTOR_INPUT_MODELS)} (LLaVA-style)"
            )
        return getattr(self.core.model, name)

    def vision_embeddings(self, pixel_values: Tensor) -> Tensor:
        """(N, tokens, vision hidden): the projector's input for each image (the vision tower's selected features),
        what a Synth² generator learns to produce. Read off the projector's input during the model's own image
        encoding, so feature-layer and CLS selection stay the model's."""
        captured: list[Tensor] = []
        hook = self.projector.register_forward_pre_hook(lambda module, args: captured.append(args[0]))
        try:
            self.encode_images(pixel_values)
        finally:
            hook.remove()
        return captured[0]

    def project_embeddings(self, embeddings: Tensor) -> list[Tensor]:
        """Image features from vision-space embeddings (N, tokens, vision hidden): the projector only; the vision
        tower is never run (Synth²'s synthetic samples skip pixels and the image encoder)."""
        return list(self.projector(embeddings.to(self.core.dtype)))

    def image_features(self, batch: dict) -> list[Tensor]:
        """Features of every image of a collated batch, in ``image_index`` order: the rows of ``pixel_values``
        through the vision tower, then the rows of ``vision_embeddings`` (synthetic, Synth²) through the projector
        alone. Either key may be absent (a batch with no real or no synthetic image)."""
        features: list[Tensor] = []
        if "pixel_values" in batch:
            features += self.encode_images(batch["pixel_values"], **batch.get("image_inputs", {}))
        if "vision_embeddings" in batch:
            features += self.project_embeddings(batch["vision_embeddings"])
        return features

    def _encoder_outputs(self, features: list[Tensor]) -> dict | None:
        if not features:
            return None
        if self.model_type in MROPE_MODELS:
            features = [f.flatten(0, 1) for f in features]
        elif self.model_type in PREFIX_LM_MODELS:  # PaliGemma casts pooler_output as one tensor
            features = torch.stack(features)
        return {"image": BaseModelOutputWithPooling(pooler_output=features)}

    def _image_grids(self, features: list[Tensor]) -> Tensor:
        merge = self.core.config.vision_config.spatial_merge_size
        return torch.tensor([[1, f.shape[0] * merge, f.shape[1] * merge] for f in features],
                            device=features[0].device)

    def _text_inputs(self, input_ids: Tensor, labels: Tensor | None, features: list[Tensor]) -> dict:
        """The family-specific extra inputs of a text forward over rows whose images are ``features``."""
        if self.model_type in MROPE_MODELS and features:
            return {"image_grid_thw": self._image_grids(features),
                    "mm_token_type_ids": (input_ids == self.image_token_id).int()}
        if self.model_type in PREFIX_LM_MODELS:
            # PaliGemma's prefix-LM: token type 0 (full attention) up to the first answer token, 1 (causal) after.
            suffix = torch.zeros_like(input_ids) if labels is None else (labels != IGNORE_INDEX).cumsum(1) > 0
            return {"token_type_ids": suffix.long()}
        return {}

    def hidden_states(
        self, input_ids: Tensor, attention_mask: Tensor, labels: Tensor | None, image_features: list[Tensor]
    ) -> Tensor:
        """(B, T, H) last hidden states of the language model, before the output head; row i of the batch uses
        ``image_features[i]`` for its image placeholders (``labels`` only mark the answer for PaliGemma)."""
        return self.core.model(
            input_ids=input_ids, attention_mask=attention_mask,
            mm_encoder_outputs=self._encoder_outputs(image_features),
            **self._text_inputs(input_ids, labels, image_features),
        ).last_hidden_state

    @property
    def hidden_size(self) -> int:
        """Width of the language model's hidden states (what the output head, or a reward head, reads)."""
        return self.core.get_output_embeddings().in_features

    def response_states(
        self, input_ids: Tensor, attention_mask: Tensor, labels: Tensor, image_features: list[Tensor]
    ) -> ResponseStates:
        """Hidden states at the response positions (and the head that projects them); row i of the batch
        uses ``image_features[i]`` for its image placeholders."""
        hidden = self.hidden_states(input_ids, attention_mask, labels, image_features)
        return response_states(hidden, labels, head=self.core.get_output_embeddings())

    @property
    def can_share_prefix(self) -> bool:
        """Packed prefix sharing passes a 4-D attention mask, which the sdpa and eager attention kernels take;
        flash-attention-2 and friends only take padding masks, so those models run the plain forward.
        PaliGemma runs the plain forward too: its prefix-LM mask (full attention over image + prompt) and
        1-based positions are not what the packed rows carry."""
        return (self.core.config._attn_implementation in ("sdpa", "eager")
                and self.model_type not in PREFIX_LM_MODELS)

    def _packed_positions(self, packed: PackedViews, features: list[Tensor]) -> Tensor:
        """Position ids of the packed rows. Qwen2-VL/2.5-VL: the model's own 3-D rope index over each prefix
        (image tokens get (t, h, w) positions); a response token at unpacked position i gets i + the prefix's
        rope delta on all three axes, which is what the model gives text after the last image."""
        if self.model_type not in MROPE_MODELS:
            return packed.position_ids
        prefix = packed.segments == PREFIX_SEGMENT
        rope, delta = self.core.model.get_rope_index(
            packed.input_ids, mm_token_type_ids=(packed.input_ids == self.image_token_id).int(),
            image_grid_thw=self._image_grids(features), attention_mask=prefix.long(),
        )
        after = (packed.position_ids + delta.to(packed.position_ids.device))[None].expand_as(rope)
        return torch.where(prefix[None], rope, after)

    def shared_prefix_states(self, packed: PackedViews, image_features: list[Tensor]) -> ResponseStates:
        """``response_states`` of the unpacked rows, from one forward of the packed rows
        (``vlmalign.models.prefix_sharing``): each image + prompt prefix runs once."""
        features = [image_features[i] for i in packed.images]
        hidden = self.core.model(
            input_ids=packed.input_ids,
            attention_mask=packed.attention_mask(self.core.dtype),
            position_ids=self._packed_positions(packed, features),
            mm_encoder_outputs=self._encoder_outputs(features),
        ).last_hidden_state
        return ResponseStates(hidden[packed.predictor_group, packed.predictor_position], packed.targets,
                              packed.target_row, packed.num_rows, self.core.get_output_embeddings())

    def response_logps(
        self, input_ids: Tensor, attention_mask: Tensor, labels: Tensor, image_features: list[Tensor]
    ) -> ResponseLogProbs:
        """Summed response log-probs; row i uses ``image_features[i]`` for its image placeholders."""
        return states_logps(self.response_states(input_ids, attention_mask, labels, image_features))

    @torch.no_grad()
    def generate(self, input_ids: Tensor, attention_mask: Tensor, pixel_values: Tensor, **kwargs):
        """New tokens only (left-padded prompts). ``kwargs`` include the batch's ``image_inputs`` where the
        model has them (``image_grid_thw``, ``pixel_attention_mask``). With ``return_dict_in_generate=True``,
        HF's output object, its ``sequences`` cut to the new tokens."""
        if self.model_type in MROPE_MODELS:
            kwargs.setdefault("mm_token_type_ids", (input_ids == self.image_token_id).int())
        elif self.model_type in PREFIX_LM_MODELS:
            kwargs.setdefault("token_type_ids", torch.zeros_like(input_ids))
        out = self.core.generate(
            input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values, **kwargs
        )
        if isinstance(out, Tensor):
            return out[:, input_ids.shape[1] :]
        out.sequences = out.sequences[:, input_ids.shape[1] :]
        return out

    def save_pretrained(self, directory: str | Path, merge_lora: bool = False) -> None:
        """HF-format export loadable by plain ``transformers`` (LoRA merged on request)."""
        model = self.model
        if self.is_lora and merge_lora:
            model = model.merge_and_unload()
        model.save_pretrained(directory)
        self.processor.save_pretrained(directory)
