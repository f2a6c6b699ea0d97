"""Rollouts: the policy samples G responses per prompt inside training, and they become a training batch.

Sampling is ``transformers``' ``generate`` with the KV cache, batched, through the project's one generation path
(``vlmalign.models.generation.sample_token_ids``), seeded per step: step s samples from a generator seeded by
(seed, s), inside a forked RNG so the training stream (dropout, data order) is the same with or without rollouts
and a resumed run samples what the uninterrupted one did. Temperature, top-p and max-new-tokens come from config
(``rollout``).

The samples are then laid out exactly like every other training view: the prompt through the processor (its
image placeholder expanded to the model's image tokens, never cut), the response tokens after it labelled,
collated by the ``MultiViewCollator`` into the ``rollout`` view, so the log-probs of a rollout come from the same
view forward and the same log-prob function as DPO's (``vlmalign.models.views``, ``vlmalign.models.logprobs``).
The G samples of a prompt point at one image (encoded once per step) and carry ``prompt_length``, so with prefix
sharing their image + prompt prefix runs once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vlmalign.data.collate import MultiViewCollator
from vlmalign.data.encoding import EncodedExample, SequenceEncoder
from vlmalign.data.shapes_prompts import PromptRecord
from vlmalign.errors import ConfigError, DataError
from vlmalign.models.backbone import VisionLanguageBackbone
from vlmalign.models.generation import sample_token_ids
from vlmalign.objectives.policy_gradient import ROLLOUT_VIEW


@dataclass(frozen=True)
class RolloutSettings:
    """``rollout``: how the policy samples (group_size: samples per prompt; batch_size: sequences per generate
    call; seed: the rollout seed, combined with the step)."""

    group_size: int = 4
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 48
    seed: int = 0
    batch_size: int = 64

    def __post_init__(self) -> None:
        problems = [f"rollout.{key}={getattr(self, key)!r} must be an integer >= 1"
                    for key in ("group_size", "max_new_tokens", "batch_size")
                    if not isinstance(getattr(self, key), int) or getattr(self, key) < 1]
        if not self.temperature > 0:
            problems.append(f"rollout.temperature={self.temperature!r} must be > 0 (sampling)")
        if not 0 < self.top_p <= 1:
            problems.append(f"rollout.top_p={self.top_p!r} must be in (0, 1]")
        if problems:
            raise ConfigError("; ".join(problems))


@dataclass
class Rollout:
    """One step's samples: ``prompts`` (P), ``responses`` (P·G token ids, a prompt's G consecutive), their
    decoded ``texts``, and ``batch``, the collated ``rollout`` view on the policy's device."""

    prompts: list[PromptRecord]
    responses: list[list[int]]
    texts: list[str]
    batch: dict
    group_size: int

    def prompt_of(self, row: int) -> PromptRecord:
        return self.prompts[row // self.group_size]


def step_seed(seed: int, step: int) -> int:
    """The sampling seed of training step ``step``: distinct per (seed, step), independent of the process."""
    return seed * 1_000_033 + step


def collect_rollout(backbone: VisionLanguageBackbone, prompts: list[PromptRecord], settings: RolloutSettings,
                    step: int) -> Rollout:
    """Sample ``settings.group_size`` responses per prompt at ``step`` and lay them out as a training batch."""
    device = next(backbone.parameters()).device
    encoder = SequenceEncoder(backbone.processor, max_length=10**6)
    encoded = [encoder.encode_prompt_inputs(p.image, p.prompt) for p in prompts]
    room = max_positions(backbone) - max(len(e[0]) for e in encoded)
    if settings.max_new_tokens > room:
        raise DataError(f"rollout.max_new_tokens={settings.max_new_tokens} does not fit: the longest prompt is "
                        f"{max_positions(backbone) - room} tokens (image placeholders included) of the model's "
                        f"{max_positions(backbone)} positions; lower rollout.max_new_tokens to at most {room}")
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        responses = sample_token_ids(backbone, [p.image for p in prompts], [p.prompt for p in prompts],
                                     settings.group_size, settings.temperature, settings.top_p,
                                     settings.max_new_tokens, step_seed(settings.seed, step), settings.batch_size)
    group = settings.group_size
    examples = [EncodedExample(f"{prompts[row // group].sample_id}#{row % group}", encoded[row // group][1],
                               encoded[row // group][0], {ROLLOUT_VIEW: ids}, image_inputs=encoded[row // group][2],
                               pixel_layout=encoded[row // group][3])
                for row, ids in enumerate(responses)]
    batch = MultiViewCollator(backbone.pad_token_id, (ROLLOUT_VIEW,))(examples)
    if "image_inputs" not in batch:  # one (C, H, W) tensor per image: keep each prompt's image once
        batch["pixel_values"] = batch["pixel_values"][::group]
        batch["views"][ROLLOUT_VIEW]["image_index"] = torch.arange(len(responses)) // group
    texts = backbone.processor.tokenizer.batch_decode(responses, skip_special_tokens=True)
    return Rollout(list(prompts), responses, [t.strip() for t in texts], _to(batch, device), group)


def max_positions(backbone: VisionLanguageBackbone) -> int:
    """Longest sequence the language model takes (its position table)."""
    config = backbone.core.config
    return getattr(getattr(config, "text_config", config), "max_position_embeddings", 10**9)


def _to(batch: dict, device) -> dict:
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch.to(device) if isinstance(batch, torch.Tensor) else batch
