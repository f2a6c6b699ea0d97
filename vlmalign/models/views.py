"""The view forward: response-position states and log-probs of every view an objective names, in one pass.

Shared by the training step (``vlmalign/module.py``) and the reference strategies (``vlmalign/reference/``), so
it lives with the models: each distinct image is encoded once, and where chosen and rejected share an image and
prompt they are packed after one shared prefix (``vlmalign/models/prefix_sharing.py``).
"""

from __future__ import annotations

import torch

from vlmalign.errors import ConfigError
from vlmalign.logps import ResponseLogProbs
from vlmalign.models.backbone import VisionLanguageBackbone
from vlmalign.models.logprobs import ResponseStates, states_logps
from vlmalign.models.prefix_sharing import PackedViews, pack_views

PACKED_KEY = "_packed_views"  # where a batch keeps its packed rows, per tuple of views


def packed_views(batch: dict, views: tuple[str, ...], rows: dict, pad_token_id: int) -> PackedViews:
    """``pack_views`` of the batch's ``views`` (concatenated into ``rows``), computed once per batch: the policy's
    forward and the reference's pack the same rows (~1 ms of index bookkeeping and a mask each, per step)."""
    memo = batch.setdefault(PACKED_KEY, {})
    key = (tuple(views), pad_token_id)
    if key not in memo:
        prompt_lengths = torch.cat([batch["views"][v]["prompt_length"] for v in views])
        memo[key] = pack_views(**rows, prompt_lengths=prompt_lengths, pad_token_id=pad_token_id)
    return memo[key]


def view_states(
    backbone: VisionLanguageBackbone, batch: dict, views: tuple[str, ...], share_prefix: bool = True
) -> dict[str, ResponseStates]:
    """Response-position hidden states of every view from one forward; images encoded once, shared by index.

    ``share_prefix``: when every view is a response to the sample's prompt and some image is used by more
    than one view (chosen and rejected), pack each image + prompt prefix with all its responses into one
    row (``vlmalign.models.prefix_sharing``); same states, fewer positions.
    """
    missing = [v for v in views if v not in batch["views"]]
    if missing:
        raise ConfigError(f"the objective needs views {missing} but the data provides {sorted(batch['views'])}")
    features = backbone.image_features(batch)
    parts = [batch["views"][v] for v in views]
    rows = {key: torch.cat([p[key] for p in parts]) for key in ("input_ids", "attention_mask", "labels", "image_index")}
    shared = rows["image_index"].unique().numel() < rows["image_index"].numel()  # some image serves two views
    if share_prefix and shared and all("prompt_length" in p for p in parts) and backbone.can_share_prefix:
        states = backbone.shared_prefix_states(packed_views(batch, views, rows, backbone.pad_token_id), features)
    else:
        image_index = rows.pop("image_index").tolist()
        states = backbone.response_states(**rows, image_features=[features[i] for i in image_index])
    out, start = {}, 0
    for view, part in zip(views, parts):
        count = part["input_ids"].shape[0]
        out[view] = states.select(start, start + count)
        start += count
    return out


def view_logps(
    backbone: VisionLanguageBackbone, batch: dict, views: tuple[str, ...], share_prefix: bool = True
) -> dict[str, ResponseLogProbs]:
    """Response log-probs of every view, from the one forward of ``view_states``."""
    return {view: states_logps(states) for view, states in view_states(backbone, batch, views, share_prefix).items()}
