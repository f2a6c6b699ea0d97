"""The MoE counterpart of a dense VLM's config: Branch-Train-MiX's merged model (arXiv 2403.07816, §2.2) as a
standard transformers model, so plain ``from_pretrained`` loads it and generates.

For the LLaVA family the Llama text model becomes a Mixtral text model inside the same LLaVA class: Mixtral is Llama
with each MLP replaced by a top-k routed set of MLPs of the same shape (attention, norms, rotary embedding and head
unchanged), so every weight of a Llama expert has exactly one place in it. A family or text model not in
``MOE_COUNTERPARTS`` has no such counterpart here and is refused.
"""

from __future__ import annotations

from transformers import MixtralConfig, PretrainedConfig

from vlmalign.errors import ConfigError

# VLM model_type -> {dense text model_type: MoE text model_type}
MOE_COUNTERPARTS = {"llava": {"llama": "mixtral"}}
# Llama settings Mixtral has no place for: a checkpoint using them would not map exactly.
UNMAPPABLE_LLAMA = {"attention_bias": False, "mlp_bias": False, "pretraining_tp": 1}
# Llama config fields Mixtral reads under the same name and meaning.
SHARED_FIELDS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                 "num_key_value_heads", "head_dim", "hidden_act", "max_position_embeddings", "initializer_range",
                 "rms_norm_eps", "pad_token_id", "bos_token_id", "eos_token_id", "tie_word_embeddings",
                 "attention_dropout", "rope_parameters")


def moe_text_type(config: PretrainedConfig) -> str:
    """The MoE text model_type for a dense VLM config, or a ConfigError naming what has none."""
    family = config.model_type
    text = getattr(getattr(config, "text_config", None), "model_type", None)
    counterpart = MOE_COUNTERPARTS.get(family, {}).get(text)
    if counterpart is None:
        known = ", ".join(f"{f} with a {t} text model" for f, table in MOE_COUNTERPARTS.items() for t in table)
        raise ConfigError(f"model family {family!r} with a {text!r} text model has no MoE counterpart to merge "
                          f"experts into (known: {known})")
    for key, plain in UNMAPPABLE_LLAMA.items():
        if getattr(config.text_config, key, plain) != plain:
            raise ConfigError(f"text_config.{key}={getattr(config.text_config, key)!r}: Mixtral has no place for it, "
                              f"so the experts would not map exactly (only {key}={plain!r} merges)")
    return counterpart


def moe_vlm_config(dense: PretrainedConfig, num_experts: int, top_k: int) -> PretrainedConfig:
    """A copy of ``dense`` whose text config is the MoE text config with ``num_experts`` experts, ``top_k`` of
    them per token (the paper's k = 2). Tokens are never dropped (Mixtral routes without a capacity limit)."""
    moe_text_type(dense)
    if not 1 <= top_k <= num_experts:
        raise ConfigError(f"top_k={top_k} must be between 1 and the number of experts ({num_experts})")
    text = dense.text_config
    shared = {name: getattr(text, name) for name in SHARED_FIELDS if hasattr(text, name)}
    moe_text = MixtralConfig(**shared, num_local_experts=num_experts, num_experts_per_tok=top_k,
                             sliding_window=None, router_jitter_noise=0.0)
    merged = dense.__class__.from_dict({**dense.to_dict(), "text_config": moe_text.to_dict()})
    merged.architectures = None
    return merged
