"""Fit the text-to-embedding generator on real (caption, embedding) pairs and score it on held-out scenes.

Loss: mean squared error in standardised units (per-channel z-scores of the training targets), so every
channel counts alike whatever the vision tower's scale. Held-out scores: that MSE, R² = 1 − MSE / variance of
the held-out targets (0 = predicting the mean embedding, 1 = exact), and caption→image retrieval top-1
accuracy among the held-out images (cosine over the flattened embedding): does the generated embedding
identify its scene?
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from transformers import get_cosine_schedule_with_warmup

from vlmalign.models.synth2_generator import GeneratorSpec, TextToEmbeddingGenerator, tokenize_captions
from vlmalign.pipelines.synth2.real_pairs import CaptionEmbeddingPairs

log = logging.getLogger(__name__)


def generator_spec(tokenizer, pairs: CaptionEmbeddingPairs, **sizes) -> GeneratorSpec:
    _, tokens, dim = pairs.embeddings.shape
    return GeneratorSpec(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, num_tokens=tokens,
                         embedding_dim=dim, **sizes)


@torch.no_grad()
def evaluate_generator(model: TextToEmbeddingGenerator, tokenizer, pairs: CaptionEmbeddingPairs,
                       batch_size: int = 256) -> dict[str, float]:
    model.eval()
    ids, mask = tokenize_captions(tokenizer, pairs.captions)
    predicted = torch.cat([model(ids[s:s + batch_size], mask[s:s + batch_size])
                           for s in range(0, len(ids), batch_size)])
    target = pairs.embeddings[pairs.image_index]
    scale = model.target_std
    mse = (((predicted - target) / scale) ** 2).mean().item()
    variance = (((target - target.mean((0, 1))) / scale) ** 2).mean().item()
    similarity = F.normalize(predicted.flatten(1), dim=1) @ F.normalize(pairs.embeddings.flatten(1), dim=1).T
    retrieved = (similarity.argmax(1) == torch.tensor(pairs.image_index)).float().mean().item()
    return {"mse": mse, "r2": 1.0 - mse / variance, "retrieval_top1": retrieved,
            "retrieval_chance": 1.0 / len(pairs.embeddings)}


def fit_generator(tokenizer, train: CaptionEmbeddingPairs, spec: GeneratorSpec, steps: int, batch_size: int,
                  lr: float, weight_decay: float, warmup_steps: int, seed: int,
                  log_every: int = 200) -> tuple[TextToEmbeddingGenerator, list[dict]]:
    """The trained generator and its loss curve; deterministic in ``seed`` on the CPU."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = TextToEmbeddingGenerator(spec)
    model.set_target_statistics(train.embeddings)
    ids, mask = tokenize_captions(tokenizer, train.captions)
    targets = (train.embeddings - model.target_mean) / model.target_std
    image_index = torch.tensor(train.image_index)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, warmup_steps, steps)
    order = torch.Generator().manual_seed(seed)
    per_epoch = math.ceil(len(ids) / batch_size)
    permutation, curve = torch.randperm(len(ids), generator=order), []
    model.train()
    for step in range(steps):
        if step % per_epoch == 0 and step:
            permutation = torch.randperm(len(ids), generator=order)
        rows = permutation[(step % per_epoch) * batch_size:(step % per_epoch + 1) * batch_size]
        length = int(mask[rows].sum(1).max())  # trim the batch's shared padding
        predicted = model.standardised(ids[rows, :length], mask[rows, :length])
        loss = F.mse_loss(predicted, targets[image_index[rows]])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        if step % log_every == 0 or step == steps - 1:
            curve.append({"step": step, "loss": loss.item()})
            log.info("generator step %d/%d: loss %.4f", step + 1, steps, loss.item())
    return model.eval(), curve
