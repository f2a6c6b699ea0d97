"""Pack the views of one batch so each (image + prompt) prefix runs once: one row per image, its prompt
followed by every response that answers it, with an attention mask that keeps the responses apart.

Chosen and rejected answer the same prompt about the same image, so their sequences agree up to the
first response token. A plain concatenated forward runs that prefix (about 75 of ~110 tokens on the
shapes world, most of them image placeholders) once per view. Packed as ``[prefix | chosen |
rejected]`` with a block mask (each response sees the prefix and itself, causally, never the other
response) and position ids that restart every response where the prompt ends, one forward gives
every response token exactly the state the unpacked sequence would (the prefix-sharing packing of
Wang et al. 2024, "Accelerating Direct Preference Optimization with Prefix Sharing", arXiv
2410.20305, §3). Unlike reusing a key/value cache it is a single ordinary forward, so it works with
activation checkpointing and costs one call, not two.

Everything here is index bookkeeping on token tensors; the forward itself is the backbone's. Rows
that share an ``image_index`` form one group: they come from one sample (the collator gives a
sample's real and corrupted images different indices), so they share the prompt too, which
``pack_views`` checks rather than assumes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vlmalign.models.logprobs import IGNORE_INDEX

PAD_SEGMENT, PREFIX_SEGMENT = -1, 0


@dataclass(frozen=True)
class PackedViews:
    """One packed row per group (image); where each original row's response lies in it."""

    input_ids: Tensor  # (G, L) prefix, then the group's responses back to back, then padding
    position_ids: Tensor  # (G, L) each response continues from its prompt length, as if unpacked
    segments: Tensor  # (G, L) PREFIX_SEGMENT, the 1-based response number within the row, or PAD_SEGMENT
    images: list[int]  # image index of each group (row of the encoded images)
    num_rows: int  # rows (sequences) of the unpacked batch
    predictor_group: Tensor  # (M,) packed row of the state that predicts each response token, in
    predictor_position: Tensor  # (M,) ... (unpacked row, position) order, as ResponseStates wants
    target_row: Tensor  # (M,) unpacked row of each response token
    targets: Tensor  # (M,) the labels those states predict

    def attention_mask(self, dtype: torch.dtype) -> Tensor:
        """(G, 1, L, L) additive mask: causal within the prefix and within each response, every response sees
        the whole prefix, none sees another response. A padding query attends to the first token only,
        so no softmax row is empty (its output is never read). Made once per dtype (policy and reference
        share one packing per step, ``vlmalign.models.views.packed_views``); nothing writes to it."""
        masks = self.__dict__.setdefault("_masks", {})  # a frozen dataclass: cached beside its fields
        if dtype not in masks:
            masks[dtype] = self._additive_mask(dtype)
        return masks[dtype]

    def _additive_mask(self, dtype: torch.dtype) -> Tensor:
        query, key = self.segments[:, :, None], self.segments[:, None, :]
        length = self.segments.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=self.segments.device).tril()
        allowed = causal & (key != PAD_SEGMENT) & ((key == PREFIX_SEGMENT) | (key == query)) & (query != PAD_SEGMENT)
        allowed[:, :, 0] |= query[:, :, 0] == PAD_SEGMENT
        mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
        return mask.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]


def pack_views(
    input_ids: Tensor, attention_mask: Tensor, labels: Tensor, image_index: Tensor, prompt_lengths: Tensor,
    pad_token_id: int,
) -> PackedViews:
    """Pack right-padded rows (prompt + response each) into one row per image.

    Raises ValueError if two rows with the same image have different prompts (there is then no shared
    prefix) or if a row has no response token after its prompt.
    """
    device = input_ids.device
    lengths = attention_mask.sum(1).tolist()
    prompts = prompt_lengths.tolist()
    by_image: dict[int, list[int]] = {}
    for row, image in enumerate(image_index.tolist()):
        by_image.setdefault(image, []).append(row)
    packed_rows, packed_positions, packed_segments = [], [], []
    predictor_group, predictor_position, target_row, targets = [], [], [], []
    for group, rows in enumerate(by_image.values()):
        first = rows[0]
        prefix = input_ids[first, : prompts[first]]
        pieces = [prefix]
        positions = [torch.arange(len(prefix), device=device)]
        segments = [torch.full((len(prefix),), PREFIX_SEGMENT, device=device)]
        start = len(prefix)
        for number, row in enumerate(rows, start=1):
            if prompts[row] != len(prefix) or not torch.equal(input_ids[row, : prompts[row]], prefix):
                raise ValueError(f"rows {first} and {row} use image {image_index[row].item()} with different prompts; "
                                 "they share no prefix")
            if lengths[row] <= prompts[row]:
                raise ValueError(f"row {row} has no response token after its prompt; nothing to pack")
            response = input_ids[row, prompts[row] : lengths[row]]
            count = len(response)
            pieces.append(response)
            positions.append(torch.arange(prompts[row], lengths[row], device=device))
            segments.append(torch.full((count,), number, device=device))
            # Token t of the response is predicted by the state before it: the prompt's last position for
            # t = 0, else the response's own previous position (the causal shift of response_states).
            predictor_group += [group] * count
            predictor_position += [len(prefix) - 1, *range(start, start + count - 1)]
            target_row += [row] * count
            targets.append(labels[row, prompts[row] : lengths[row]])
            start += count
        packed_rows.append(torch.cat(pieces))
        packed_positions.append(torch.cat(positions))
        packed_segments.append(torch.cat(segments))
    pad = torch.nn.utils.rnn.pad_sequence
    labelled = torch.cat(targets) != IGNORE_INDEX
    # (unpacked row, position) order; the sort is stable, so positions stay in order within a row.
    order = torch.tensor(sorted(range(len(target_row)), key=lambda i: target_row[i]), device=device)
    order = order[labelled[order]]

    def as_long(values: list[int]) -> Tensor:
        return torch.tensor(values, dtype=torch.long, device=device)[order]

    return PackedViews(
        input_ids=pad(packed_rows, batch_first=True, padding_value=pad_token_id),
        position_ids=pad(packed_positions, batch_first=True, padding_value=0),
        segments=pad(packed_segments, batch_first=True, padding_value=PAD_SEGMENT),
        images=list(by_image),
        num_rows=len(lengths),
        predictor_group=as_long(predictor_group),
        predictor_position=as_long(predictor_position),
        target_row=as_long(target_row),
        targets=torch.cat(targets)[order],
    )
