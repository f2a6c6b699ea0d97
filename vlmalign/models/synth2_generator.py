"""Synth²'s text-to-embedding generator: a caption in, the VLM's vision-space image embedding out.

Synth² (arXiv 2403.07750, §3.2) trains a text-to-image model on the VLM's own data and keeps its output in
the image encoder's embedding space, so synthetic samples skip pixel decoding *and* the image encoder. Their
generator predicts discrete VQ-GAN codes (MUSE-style masked tokens); the embeddings a LLaVA-style VLM consumes
after its vision tower are continuous, so this one regresses them: a bidirectional transformer encoder
(transformers' ``BertModel``) reads the caption followed by one learned query per image token, and a linear
head maps each query's state to that token's embedding. Targets are standardised per channel with the
training set's statistics (kept as buffers, so a loaded generator un-standardises itself).

A checkpoint directory holds ``generator.json`` (the sizes), ``model.safetensors``, the caption tokenizer
(``tokenizer/``) and ``meta.json`` (what it was trained on, against which vision tower, held-out scores).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from transformers import AutoTokenizer, BertConfig, BertModel

from vlmalign.errors import ConfigError

CONFIG_FILE, WEIGHTS_FILE, META_FILE, TOKENIZER_DIR = "generator.json", "model.safetensors", "meta.json", "tokenizer"


@dataclass(frozen=True)
class GeneratorSpec:
    vocab_size: int
    pad_token_id: int
    num_tokens: int  # image tokens per image (the vision tower's output length)
    embedding_dim: int  # the vision tower's hidden size (the projector's input width)
    hidden: int = 128
    layers: int = 3
    heads: int = 4
    max_text_length: int = 64
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ConfigError(f"generator.hidden={self.hidden} must be divisible by generator.heads={self.heads}")
        for name in ("num_tokens", "embedding_dim", "hidden", "layers", "max_text_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"generator.{name}={getattr(self, name)} must be >= 1")


class TextToEmbeddingGenerator(nn.Module):
    def __init__(self, spec: GeneratorSpec) -> None:
        super().__init__()
        self.spec = spec
        self.encoder = BertModel(BertConfig(
            vocab_size=spec.vocab_size, hidden_size=spec.hidden, num_hidden_layers=spec.layers,
            num_attention_heads=spec.heads, intermediate_size=4 * spec.hidden, pad_token_id=spec.pad_token_id,
            max_position_embeddings=spec.max_text_length + spec.num_tokens, type_vocab_size=1,
            hidden_dropout_prob=spec.dropout, attention_probs_dropout_prob=spec.dropout,
        ), add_pooling_layer=False)
        self.queries = nn.Parameter(torch.randn(spec.num_tokens, spec.hidden) * 0.02)  # one per image token
        self.head = nn.Linear(spec.hidden, spec.embedding_dim)
        self.register_buffer("target_mean", torch.zeros(spec.embedding_dim))
        self.register_buffer("target_std", torch.ones(spec.embedding_dim))

    def standardised(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """(B, num_tokens, embedding_dim) predictions in standardised units (what the loss compares)."""
        if input_ids.shape[1] > self.spec.max_text_length:
            raise ConfigError(f"a caption of {input_ids.shape[1]} tokens exceeds generator.max_text_length="
                              f"{self.spec.max_text_length}")
        words = self.encoder.embeddings.word_embeddings(input_ids)
        queries = self.queries.expand(input_ids.shape[0], -1, -1)
        mask = torch.cat([attention_mask, attention_mask.new_ones(queries.shape[:2])], dim=1)
        hidden = self.encoder(inputs_embeds=torch.cat([words, queries], dim=1), attention_mask=mask).last_hidden_state
        return self.head(hidden[:, -self.spec.num_tokens:])

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """(B, num_tokens, embedding_dim) vision-space embeddings, in the vision tower's units."""
        return self.standardised(input_ids, attention_mask) * self.target_std + self.target_mean

    def set_target_statistics(self, embeddings: Tensor) -> None:
        """Per-channel mean and std of the training targets (N, tokens, dim)."""
        flat = embeddings.reshape(-1, embeddings.shape[-1]).double()
        self.target_mean.copy_(flat.mean(0).float())
        self.target_std.copy_(flat.std(0).clamp(min=1e-6).float())


def tokenize_captions(tokenizer, captions: list[str]) -> tuple[Tensor, Tensor]:
    """(ids, mask) of ``captions``, padded on the right: the generator's text positions count from 0 whatever the
    tokenizer's own padding side (the VLM's may pad left for generation)."""
    tokenizer.padding_side = "right"
    encoded = tokenizer(captions, padding=True, return_tensors="pt", add_special_tokens=False)
    return encoded["input_ids"], encoded["attention_mask"]


@dataclass
class LoadedGenerator:
    model: TextToEmbeddingGenerator
    tokenizer: object
    meta: dict

    @torch.no_grad()
    def embed(self, captions: list[str], batch_size: int = 256) -> Tensor:
        """(len(captions), tokens, dim) embeddings, in order; fp32 on the CPU."""
        self.model.eval()
        out = []
        for start in range(0, len(captions), batch_size):
            out.append(self.model(*tokenize_captions(self.tokenizer, captions[start:start + batch_size])))
        empty = torch.zeros(0, self.model.spec.num_tokens, self.model.spec.embedding_dim)
        return torch.cat(out) if out else empty


def save_generator(directory: str | Path, model: TextToEmbeddingGenerator, tokenizer, meta: dict) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_FILE).write_text(json.dumps(asdict(model.spec), indent=2), encoding="utf-8")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(directory / WEIGHTS_FILE))
    tokenizer.save_pretrained(directory / TOKENIZER_DIR)
    (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")


def load_generator(directory: str | Path) -> LoadedGenerator:
    """A checkpoint written by ``vlmalign-synth2-generator``; a missing or foreign directory is a ConfigError."""
    directory = Path(directory).expanduser()
    parts = (CONFIG_FILE, WEIGHTS_FILE, META_FILE, TOKENIZER_DIR)
    missing = [name for name in parts if not (directory / name).exists()]
    if missing:
        raise ConfigError(f"{directory} is not a Synth² generator checkpoint (missing {missing}); train one with "
                          "vlmalign-synth2-generator")
    try:
        spec = GeneratorSpec(**json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8")))
    except (TypeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{directory / CONFIG_FILE}: not a generator spec ({error})") from error
    model = TextToEmbeddingGenerator(spec)
    model.load_state_dict(load_file(str(directory / WEIGHTS_FILE)))
    tokenizer = AutoTokenizer.from_pretrained(directory / TOKENIZER_DIR)
    return LoadedGenerator(model.eval(), tokenizer, json.loads((directory / META_FILE).read_text(encoding="utf-8")))
