"""Router initialisation for a merged MoE (arXiv 2403.07816, §2.2: the router W_l of layer l is new and learned in
the MoE fine-tune; how it starts is a choice, not the paper's).

- ``random_router``: N(0, σ²) rows, σ the model's ``initializer_range``, as transformers initialises a new router.
- ``activation_router``: row e of W_l is expert e's mean FFN input at layer l on its own domain, centred on the mean
  over experts and scaled to unit norm. A token then starts routed towards the experts whose domains' inputs it
  resembles (mergekit-moe's "hidden" gates do the same from prompts). Identical experts on identical data give a
  zero router: uniform routing, which still reproduces the dense model (every expert is the same function).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from vlmalign.models.backbone import VisionLanguageBackbone
from vlmalign.models.views import view_states


def random_router(names: Sequence[str], num_experts: int, hidden: int, std: float, seed: int) -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {name: torch.randn(num_experts, hidden, generator=generator) * std for name in names}


def activation_router(names: Sequence[str], mean_inputs: Sequence[Tensor]) -> dict[str, Tensor]:
    """``mean_inputs[e]``: (layers, hidden) mean FFN input of expert e on its domain (``mean_ffn_inputs``)."""
    stacked = torch.stack(list(mean_inputs))  # (experts, layers, hidden)
    centred = stacked - stacked.mean(0, keepdim=True)
    rows = centred / centred.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    return {name: rows[:, layer].contiguous() for layer, name in enumerate(names)}


@torch.no_grad()
def mean_ffn_inputs(backbone: VisionLanguageBackbone, batches: Iterable[dict]) -> Tensor:
    """(layers, hidden): the mean over non-padding tokens of each decoder layer's FFN input (the post-attention
    norm's output), over collated ``batches`` of the "chosen" view."""
    layers = backbone.core.model.language_model.layers
    sums = [torch.zeros(()) for _ in layers]
    count = torch.zeros(())
    mask: list[Tensor] = []

    def hook_for(index: int):
        def record(module, args):
            hidden = args[0].float()  # (B, T, H)
            sums[index] = sums[index] + (hidden * mask[0][..., None]).sum((0, 1))
        return record

    handles = [layer.mlp.register_forward_pre_hook(hook_for(i)) for i, layer in enumerate(layers)]
    try:
        for batch in batches:
            mask[:] = [batch["views"]["chosen"]["attention_mask"].float()]
            view_states(backbone, batch, ("chosen",), share_prefix=False)
            count = count + mask[0].sum()
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack(sums) / count.clamp(min=1)
