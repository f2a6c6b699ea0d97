"""Align the tiny LLaVA's projector with the language model's word embeddings before any VLM training.

LLaVA's first stage (Liu et al. 2023, §4.2 "Stage 1: pre-training for feature alignment") trains the projector
alone so that image tokens land where the language model's words are. The shapes-world base skipped that stage and
learned to match a question's *colour* against the image but never its *shape*: it answers "is there a circle?"
"yes" for any scene, though its captions name shapes correctly (docs/foundation.md, "World v3.1"). Colour is
what the frozen tower's features carry most strongly; here the projector first learns to map each grid cell's
token to the sum of the input embeddings of its size, colour and shape words (an empty cell to zero), so that an
object's shape is as visible to attention as its colour, in the very coordinates the question's words use.
"""

from __future__ import annotations

import random

import torch

from vlmalign.data.shapes.render import render_scene
from vlmalign.data.shapes.world import COLORS, POSITIONS, SHAPES, SIZES, sample_scene
from vlmalign.models.tower_pretraining import BATCH, tower_patch_states, train_with_cosine_adamw


def word_targets(scenes, embeddings: torch.Tensor, word_ids: dict[str, int]) -> torch.Tensor:
    """(B, 9, H): per cell (reading order) the sum of its object's size, colour and shape word embeddings."""
    targets = torch.zeros(len(scenes), len(POSITIONS), embeddings.shape[1])
    for b, scene in enumerate(scenes):
        for obj in scene.objects:
            words = [word_ids[obj.size], word_ids[obj.color], word_ids[obj.shape]]
            targets[b, POSITIONS.index(obj.position)] = embeddings[words].sum(0)
    return targets


def align_projector(model, tokenizer, image_processor, image_size: int, steps: int, seed: int = 0) -> dict:
    """Train ``model``'s projector in place for ``steps`` batches (tower and language model untouched); returns the
    held-out share of cells whose token is nearest (cosine) to its own target among all 40 object targets."""
    tower, projector = model.model.vision_tower, model.model.multi_modal_projector
    embeddings = model.get_input_embeddings().weight.detach().clone()
    word_ids = {w: tokenizer.convert_tokens_to_ids(w) for w in (*SIZES, *COLORS, *SHAPES)}

    def batch_of(split: str, start: int, size: int):
        scenes = [sample_scene(random.Random(f"{seed}:{split}:{i}"), f"{split}-{i}", 1, 4)
                  for i in range(start, start + size)]
        pixels = image_processor([render_scene(s, image_size) for s in scenes], return_tensors="pt").pixel_values
        with torch.no_grad():
            cells = tower_patch_states(tower, pixels)
        return scenes, cells, word_targets(scenes, embeddings, word_ids)

    def loss_at(step: int) -> torch.Tensor:
        _, cells, targets = batch_of("projector", step * BATCH, BATCH)
        return torch.nn.functional.mse_loss(projector(cells), targets)

    projector.train()
    loss = train_with_cosine_adamw(projector.parameters(), steps, loss_at)
    projector.eval()
    with torch.no_grad():
        scenes, cells, targets = batch_of("projector-val", 0, 256)
        tokens = projector(cells)
        every = torch.stack([embeddings[[word_ids[z], word_ids[c], word_ids[s]]].sum(0)
                             for z in SIZES for c in COLORS for s in SHAPES])
        occupied = targets.norm(dim=-1) > 0
        candidates = torch.nn.functional.normalize(every, dim=-1).T
        nearest = torch.nn.functional.normalize(tokens[occupied], dim=-1) @ candidates
        own = torch.nn.functional.normalize(targets[occupied], dim=-1) @ candidates
        accuracy = float((nearest.argmax(-1) == own.argmax(-1)).float().mean())
    return {"nearest_word_accuracy": accuracy, "final_loss": float(loss.detach())}
