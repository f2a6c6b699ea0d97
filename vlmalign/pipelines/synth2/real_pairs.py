"""The generator's training data: (caption, vision-space embedding) pairs from real rendered shapes scenes.

Each scene is rendered once and encoded once by the VLM's (frozen) vision tower; its embedding is what the
projector receives (``VisionLanguageBackbone.vision_embeddings``). Several paraphrased captions per scene teach
the generator that wording does not change the image (Synth², arXiv 2403.07750, §3.2: the text-to-image model
is trained on the same real caption-image pairs the VLM sees).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import Tensor

from vlmalign.data.shapes import Scene, describe, render_scene


@dataclass
class CaptionEmbeddingPairs:
    captions: list[str]
    image_index: list[int]  # caption i describes image image_index[i]
    embeddings: Tensor  # (images, tokens, dim)
    scenes: list[Scene]

    def __len__(self) -> int:
        return len(self.captions)


def scene_captions(scenes: list[Scene], per_scene: int, seed: int) -> tuple[list[str], list[int]]:
    """``per_scene`` paraphrased captions of each scene (a function of seed and image id)."""
    captions, index = [], []
    for i, scene in enumerate(scenes):
        for k in range(per_scene):
            captions.append(describe(scene, random.Random(f"{seed}:synth2-real:{scene.image_id}:{k}")))
            index.append(i)
    return captions, index


@torch.no_grad()
def vision_embeddings_of(backbone, images: list, batch_size: int = 64) -> Tensor:
    """(len(images), tokens, dim) projector inputs of PIL ``images``, fp32 on the CPU."""
    device = next(backbone.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        pixels = backbone.processor.image_processor(images[start:start + batch_size], return_tensors="pt")
        out.append(backbone.vision_embeddings(pixels["pixel_values"].to(device)).float().cpu())
    return torch.cat(out)


def real_pairs(backbone, scenes: list[Scene], image_size: int, captions_per_scene: int,
               seed: int) -> CaptionEmbeddingPairs:
    backbone.eval()
    embeddings = vision_embeddings_of(backbone, [render_scene(s, image_size) for s in scenes])
    captions, index = scene_captions(scenes, captions_per_scene, seed)
    return CaptionEmbeddingPairs(captions, index, embeddings, scenes)
