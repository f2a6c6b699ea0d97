"""Pre-train the tiny LLaVA's vision tower the way real towers arrive: already able to see.

A 7B VLM starts from a CLIP/SigLIP tower trained on hundreds of millions of images; the shapes world's tower
started from random weights and had to learn to see through the captioning loss alone, which left its base at
chance on every yes/no question (docs/foundation.md, "World v3"). Here the tower first learns per-cell attribute
prediction: for each of the 3x3 grid cells, linear heads on the cell's patch tokens predict the object's shape
(or "empty"), colour, size and (colour, shape) category. The heads are thrown away; only the tower is kept, and
the VLM stage trains projector and language model on top of it (conf/experiment/sft_shapes.yaml freezes the
tower: trained at the SFT learning rate it lost what it had learned, docs/foundation.md try i).

The scenes come from their own split (``"tower"``) with independent attributes and no co-occurrence prior: the
tower learns what is visible, never the world's statistics, as a tower trained on other data would.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import torch
from torch import nn

from vlmalign.data.shapes.render import render_scene
from vlmalign.data.shapes.world import COLORS, POSITIONS, SHAPES, SIZES, sample_scene

BATCH = 32
LR = 1e-3
# Class 0 = empty cell. "category" is the (colour, shape) conjunction: with only separate colour and shape heads a
# tower may encode the two independently, and a red square beside a blue circle then looks like a blue square
# beside a red circle to anything that pools over cells (the binding POPE's adversarial split probes).
HEADS = {"shape": len(SHAPES) + 1, "color": len(COLORS) + 1, "size": len(SIZES) + 1,
         "category": len(SHAPES) * len(COLORS) + 1}


def cell_targets(scenes) -> torch.Tensor:
    """(B, 9, 4) long: per cell (reading order) the index + 1 of its shape, colour, size and (colour, shape)
    category, all 0 for an empty cell."""
    targets = torch.zeros(len(scenes), len(POSITIONS), len(HEADS), dtype=torch.long)
    for b, scene in enumerate(scenes):
        for obj in scene.objects:
            shape, color = SHAPES.index(obj.shape), COLORS.index(obj.color)
            values = (shape, color, SIZES.index(obj.size), color * len(SHAPES) + shape)
            targets[b, POSITIONS.index(obj.position)] = torch.tensor(values) + 1
    return targets


def cell_features(patch_states: torch.Tensor) -> torch.Tensor:
    """(B, g*g, H) patch tokens (row-major) -> (B, 9, H): the mean over each grid cell's patches."""
    batch, tokens, hidden = patch_states.shape
    grid = math.isqrt(tokens)
    per = grid // 3
    cells = patch_states.view(batch, 3, per, 3, per, hidden).mean(dim=(2, 4))
    return cells.reshape(batch, 9, hidden)


def tower_patch_states(tower: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """The last layer's patch tokens, CLS dropped: what LLaVA's projector receives (vision_feature_layer=-1)."""
    return tower(pixel_values=pixel_values, output_hidden_states=True).hidden_states[-1][:, 1:]


def train_with_cosine_adamw(params, steps: int, loss_at: Callable[[int], torch.Tensor]) -> torch.Tensor:
    """The loop of both pre-VLM stages (this one and projector_alignment.py): AdamW at ``LR`` with a cosine decay to
    zero over ``steps``; ``loss_at(step)`` gives the step's loss. Returns the last loss."""
    optimizer = torch.optim.AdamW(params, lr=LR)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    loss = torch.tensor(float("nan"))
    for step in range(steps):
        loss = loss_at(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return loss


def pretrain_tower(model, image_processor, image_size: int, steps: int, seed: int = 0) -> dict[str, float]:
    """Train ``model``'s vision tower in place for ``steps`` batches; returns held-out per-cell accuracies."""
    tower = model.model.vision_tower  # its patch grid tiles the 3x3 cells (ensure_tiny_llava_checkpoint checks it)
    hidden = tower.config.hidden_size
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        heads = nn.ModuleDict({name: nn.Linear(hidden, classes) for name, classes in HEADS.items()})

    def batch_of(split: str, start: int, size: int):
        scenes = [sample_scene(random.Random(f"{seed}:{split}:{i}"), f"{split}-{i}", 1, 4)
                  for i in range(start, start + size)]
        pixels = image_processor([render_scene(s, image_size) for s in scenes], return_tensors="pt").pixel_values
        return pixels, cell_targets(scenes)

    def losses(pixels, targets):
        cells = cell_features(tower_patch_states(tower, pixels))
        logits = {name: head(cells) for name, head in heads.items()}
        loss = sum(nn.functional.cross_entropy(logits[name].flatten(0, 1), targets[..., i].flatten())
                   for i, name in enumerate(HEADS))
        return loss, logits

    tower.train()
    train_with_cosine_adamw([*tower.parameters(), *heads.parameters()], steps,
                            lambda step: losses(*batch_of("tower", step * BATCH, BATCH))[0])
    tower.eval()
    with torch.no_grad():
        pixels, targets = batch_of("tower-val", 0, 256)
        _, logits = losses(pixels, targets)
    occupied = targets[..., 0] > 0
    accuracy = {f"{name}_accuracy": float((logits[name].argmax(-1) == targets[..., i])[occupied].float().mean())
                for i, name in enumerate(HEADS)}
    accuracy["empty_accuracy"] = float((logits["shape"].argmax(-1) == 0)[~occupied].float().mean())
    return accuracy
