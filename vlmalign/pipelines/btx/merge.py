"""Branch-Train-MiX's merge step (arXiv 2403.07816, §2.2) and its two special cases, from checkpoints on disk to a
standard transformers checkpoint on disk.

- ``btx``: the experts' FFNs become the experts of MoE layers (the seed's too with ``seed_as_expert``, the paper's
  "generalist" expert), every other weight is their weighted mean, the router is initialised by ``router_init``;
- ``btm`` (Branch-Train-Merge): every weight averaged, a dense model of the seed's architecture;
- ``upcycle`` (sparse upcycling): the MoE built from ``num_experts`` copies of the seed.

Everything that can be wrong with the input is checked before any weight is loaded where possible, and always
before anything is written: a missing checkpoint, experts of another architecture or branched from another seed,
top-k above the number of experts, a family with no MoE counterpart. The output directory appears whole or not at
all.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForImageTextToText

from vlmalign.errors import ConfigError
from vlmalign.models.backbone import VisionLanguageBackbone
from vlmalign.models.btx_merge import average_states, dense_mlp_names, merge_moe_states, router_names
from vlmalign.models.loader import load_backbone
from vlmalign.models.moe_config import moe_vlm_config
from vlmalign.models.router_init import activation_router, mean_ffn_inputs, random_router
from vlmalign.models.weights import weights_digest
from vlmalign.utils.files import atomic_directory, write_json_atomic

log = logging.getLogger("vlmalign")

METHODS = ("btx", "btm", "upcycle")
ROUTER_INITS = ("random", "activations")
# Config keys that do not change what a checkpoint computes.
BOOKKEEPING = ("_name_or_path", "transformers_version", "architectures", "dtype", "torch_dtype")
# Batches of one domain for the activation router init: (processor, domain name) -> collated batches of the
# "chosen" view; domain None = every domain (the seed as a generalist expert).
DomainBatches = Callable[[object, str | None], list[dict]]


def _comparable(config) -> dict:
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in BOOKKEEPING}
        return value

    return strip(config.to_dict())


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key, "<absent>"), b.get(key, "<absent>")
        if isinstance(left, dict) and isinstance(right, dict):
            out += _differences(left, right, f"{prefix}{key}.")
        elif left != right:
            out.append(f"{prefix}{key}: {left!r} vs {right!r}")
    return out


def check_checkpoints(seed_model: str, experts: Sequence[str]):
    """The seed's config, after checking that every path is a checkpoint and every expert has the seed's
    architecture (the same config up to bookkeeping keys)."""
    for role, path in [("seed_model", seed_model), *(("expert", p) for p in experts)]:
        if not (Path(path) / "config.json").is_file():
            raise ConfigError(f"{role} {path!r} is not a checkpoint directory (no config.json): a missing expert? "
                              "Each branch run writes its model to <run dir>/model")
    seed_config = AutoConfig.from_pretrained(seed_model)
    for path in experts:
        differ = _differences(_comparable(seed_config), _comparable(AutoConfig.from_pretrained(path)))
        if differ:
            raise ConfigError(f"expert {path!r} is not of the seed's architecture ({seed_model!r}); its config "
                              f"differs in {'; '.join(differ[:5])}")
    return seed_config


def relative_distance(state: dict, seed: dict) -> float:
    """‖θ − θ_seed‖ / ‖θ_seed‖ over every weight: a fine-tune of the seed stays well below 1, an independently
    initialised or trained model of the same architecture sits near √2."""
    num = sum(float((state[k].double() - seed[k].double()).pow(2).sum()) for k in seed)
    den = sum(float(seed[k].double().pow(2).sum()) for k in seed)
    return math.sqrt(num / max(den, 1e-30))


def check_lineage(states: Sequence[dict], seed_state: dict, experts: Sequence[str], limit: float) -> list[float]:
    distances = [relative_distance(state, seed_state) for state in states]
    for path, distance in zip(experts, distances):
        if distance > limit:
            raise ConfigError(f"expert {path!r} is {distance:.3f} (relative L2) from the seed model, above "
                              f"max_relative_distance={limit}: it was not branched from this seed (or trained far "
                              "from it); merge experts of one seed, or raise the limit if this is intended")
    return distances


def _router(init: str, names: list[str], experts: list[VisionLanguageBackbone], seed_config,
            domains: Sequence[str | None] | None, domain_batches: DomainBatches | None, seed: int) -> dict:
    text = seed_config.text_config
    if init == "random":
        return random_router(names, len(experts), text.hidden_size, text.initializer_range, seed)
    if domain_batches is None or domains is None or len(domains) != len(experts):
        raise ConfigError(f"router.init=activations needs one domain per expert ({len(experts)}: the experts in "
                          f"order, the seed last with seed_as_expert, null for all domains); got {domains}")
    means = [mean_ffn_inputs(expert, domain_batches(expert.processor, domain))
             for expert, domain in zip(experts, domains)]
    return activation_router(names, means)


def btx_merge(
    seed_model: str,
    output: str | Path,
    experts: Sequence[str] = (),
    method: str = "btx",
    top_k: int = 2,
    seed_as_expert: bool = False,
    num_experts: int | None = None,
    expert_weights: Sequence[float] | None = None,
    router_init: str = "random",
    router_seed: int = 0,
    domains: Sequence[str | None] | None = None,
    domain_batches: DomainBatches | None = None,
    max_relative_distance: float = 0.5,
    dtype: str = "float32",
) -> Path:
    """Write the merged model of ``method`` to ``output`` (see the module docstring); returns ``output``."""
    output = Path(output)
    experts = list(experts)
    if not seed_model:
        raise ConfigError("seed_model is not set: the checkpoint the experts were branched from (e.g. the cached SFT "
                          "base's model/ directory)")
    if method not in METHODS:
        raise ConfigError(f"method={method!r} is not one of {METHODS}")
    if router_init not in ROUTER_INITS:
        raise ConfigError(f"router.init={router_init!r} is not one of {ROUTER_INITS}")
    if method == "upcycle":
        if experts or not num_experts or num_experts < 1:
            raise ConfigError("method=upcycle builds the MoE from num_experts copies of the seed: set num_experts "
                              f"(got {num_experts}) and no experts (got {experts})")
    elif not experts:
        raise ConfigError(f"method={method} needs experts: the branch runs' model directories")
    if output.exists() and any(output.iterdir()):
        raise ConfigError(f"output {str(output)!r} exists and is not empty; choose a new directory")
    seed_config = check_checkpoints(seed_model, experts)
    count = num_experts if method == "upcycle" else len(experts) + bool(seed_as_expert)
    moe_config = None if method == "btm" else moe_vlm_config(seed_config, count, top_k)

    seed = load_backbone(seed_model, dtype=dtype)
    branches = [load_backbone(path, dtype=dtype) for path in experts]
    seed_state = seed.core.state_dict()
    distances = check_lineage([b.core.state_dict() for b in branches], seed_state, experts, max_relative_distance)
    members = {"btx": branches + ([seed] if seed_as_expert else []), "btm": branches,
               "upcycle": [seed] * (num_experts or 0)}[method]
    states = [m.core.state_dict() for m in members]
    if method == "btm":
        merged = seed.core
        merged.load_state_dict(average_states(states, expert_weights))
    else:
        with torch.device("meta"):
            shapes = {k: v.shape for k, v in AutoModelForImageTextToText.from_config(moe_config).state_dict().items()}
        moe_only = set(router_names(shapes)) | {name for name in shapes if ".experts." in name}
        missing = sorted((set(shapes) - moe_only | dense_mlp_names(shapes)) - set(seed_state))
        if missing:
            raise ConfigError(f"the seed has no weights {missing[:5]} that the MoE model needs")
        router = _router(router_init, router_names(shapes), members, seed_config, domains, domain_batches,
                         router_seed)
        merged = AutoModelForImageTextToText.from_config(moe_config).to(seed.core.dtype)
        merged.load_state_dict(merge_moe_states(states, shapes, router, expert_weights))
        merged.generation_config = seed.core.generation_config
    provenance = {"method": method, "seed_model": str(seed_model), "seed_digest": weights_digest(seed.core),
                  "experts": experts, "expert_digests": [weights_digest(b.core) for b in branches],
                  "relative_distance_to_seed": distances, "seed_as_expert": bool(seed_as_expert),
                  "num_experts": count if method != "btm" else None, "top_k": top_k if method != "btm" else None,
                  "expert_weights": list(expert_weights) if expert_weights is not None else None,
                  "router_init": router_init if method != "btm" else None, "router_seed": router_seed,
                  "domains": list(domains) if domains is not None else None}
    with atomic_directory(output) as scratch:
        merged.save_pretrained(scratch)
        seed.processor.save_pretrained(scratch)
        write_json_atomic(scratch / "btx_merge.json", provenance)
    log.info("%s model of %d members written to %s", method, len(members), output)
    return output
