"""On-policy preference pairs with minimal corrections (RLHF-V, arXiv 2312.00849, §3.1 and Eq. 2's
fine-grained pairs): the policy captions each training scene greedily; its caption is the rejected
response and the same caption with its shape errors corrected (exact ground truth) is the chosen one.

Injected errors (``data/shapes/preference.py``) are random, so DPO on them pushes down shapes the
model rarely confuses and shifts its shape prior instead of fixing its actual confusions
(docs/preference.md). On-policy pairs put the contrast exactly on the mistakes the model makes.

The pairs are a function of the policy's weights and the scenes, so they are cached under a
fingerprint of both (built once, shared by every seed of a sweep, checksummed like every cache).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from vlmalign.data.shapes import render_scene
from vlmalign.data.shapes.corrections import correct_shape_errors
from vlmalign.models.generation import generate_responses
from vlmalign.models.weights import weights_digest
from vlmalign.utils.files import digest_problem, fingerprint, locked, write_json_atomic

log = logging.getLogger(__name__)


def caption_pairs(backbone, dataset, max_new_tokens: int, batch_size: int) -> list[dict]:
    """[{index, prompt, chosen, rejected}] for the scenes of ``dataset`` whose greedy caption has shape
    errors a one-word correction fixes (the others carry no fine-grained pair)."""
    prompts = [dataset.pair_for(i)[1].prompt for i in range(len(dataset))]
    images = [render_scene(scene, dataset.world.image_size) for scene in dataset.scenes]
    captions = generate_responses(backbone, images, prompts, max_new_tokens, batch_size)
    pairs = []
    for index, (scene, prompt, caption) in enumerate(zip(dataset.scenes, prompts, captions)):
        corrected = correct_shape_errors(caption, scene)
        if corrected is not None:
            pairs.append({"index": index, "prompt": prompt, "chosen": corrected, "rejected": caption})
    return pairs


def cached_caption_pairs(backbone, dataset, description: dict, cache_dir: str | Path, max_new_tokens: int,
                         batch_size: int = 64) -> tuple[list[dict], str]:
    """``caption_pairs``, computed once per (policy weights, scenes, decoding) and then read back."""
    policy = weights_digest(backbone)
    key = fingerprint([policy, description, dataset.split, max_new_tokens])
    path = Path(cache_dir) / f"pairs-{dataset.split}-{key}.json"
    with locked(path):
        if path.exists() and digest_problem(path) is None:
            return json.loads(path.read_text())["pairs"], policy
        log.info("captioning %d %s scenes with the policy for on-policy pairs (once; cached at %s)",
                 len(dataset), dataset.split, path)
        pairs = caption_pairs(backbone, dataset, max_new_tokens, batch_size)
        write_json_atomic(path, {"policy": policy, "pairs": pairs}, checksum=True)
    log.info("on-policy %s pairs: %d of %d scenes have a correctable shape error", dataset.split, len(pairs),
             len(dataset))
    return pairs, policy
