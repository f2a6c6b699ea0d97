"""Router logits of an MoE backbone's forward, recorded by hooks for the load-balancing term (Branch-Train-MiX,
arXiv 2403.07816, §2.3).

Which module is a router comes from transformers itself: an MoE model class lists it in
``_can_record_outputs["router_logits"]`` (an ``OutputRecorder``: the router class and which output holds the
logits), which is how ``output_router_logits=True`` collects them. Hooks are used rather than that flag because the
backbone's forwards return hidden states at selected positions (``vlmalign/models/backbone.py``), not the model's
output object, and because a hook sees the same logits under prefix sharing, LoRA and DeepSpeed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import Tensor, nn

from vlmalign.errors import ConfigError
from vlmalign.logps import RouterLogits
from vlmalign.models.backbone import VisionLanguageBackbone


def router_modules(backbone: VisionLanguageBackbone) -> tuple[list[nn.Module], int]:
    """The backbone's router modules in forward order, and which element of their output is the logits; a
    ConfigError when the model has none (a dense model given an MoE objective)."""
    for module in backbone.core.modules():
        recorder = getattr(type(module), "_can_record_outputs", None) or {}
        if "router_logits" in recorder:
            spec = recorder["router_logits"]
            routers = [m for m in module.modules() if isinstance(m, spec.target_class)]
            if routers:
                return routers, spec.index
    raise ConfigError(f"the objective needs router logits but model {backbone.name!r} ({backbone.model_type}) has no "
                      "MoE layers; merge experts with vlmalign-btx-merge and train the merged model "
                      "(model=hf model.name_or_path=<merged>)")


def moe_top_k(backbone: VisionLanguageBackbone) -> int:
    config = backbone.core.config
    return int(getattr(config, "text_config", config).num_experts_per_tok)


class RouterRecording:
    """Filled during a forward inside ``record_router_logits``; ``result()`` gives the record."""

    def __init__(self, top_k: int, pad_token_id: int) -> None:
        self.top_k, self.pad_token_id = top_k, pad_token_id
        self.logits: list[Tensor] = []
        self.input_ids: list[Tensor] = []

    def result(self) -> RouterLogits:
        if len(self.input_ids) != 1:
            raise RuntimeError(f"router logits recorded over {len(self.input_ids)} forwards; the record holds one")
        mask = (self.input_ids[0] != self.pad_token_id).reshape(-1)
        return RouterLogits(tuple(self.logits), mask, self.top_k)


@contextmanager
def record_router_logits(backbone: VisionLanguageBackbone) -> Iterator[RouterRecording]:
    """Record every router's logits (tokens, experts) and the input ids of the one forward run inside the block."""
    routers, index = router_modules(backbone)
    recording = RouterRecording(moe_top_k(backbone), backbone.pad_token_id)

    def keep_logits(module, args, output):
        recording.logits.append(output[index] if isinstance(output, (tuple, list)) else output)

    def keep_ids(module, args, kwargs):
        recording.input_ids.append(kwargs["input_ids"] if "input_ids" in kwargs else args[0])

    handles = [router.register_forward_hook(keep_logits) for router in routers]
    handles.append(backbone.core.model.register_forward_pre_hook(keep_ids, with_kwargs=True))
    try:
        yield recording
    finally:
        for handle in handles:
            handle.remove()
