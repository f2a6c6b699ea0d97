"""Backbone loading: the tiny offline builder and HF checkpoints share one path.

``tiny_llava_backbone`` builds the shapes-world model once, saves it with ``save_pretrained`` into a
fingerprinted cache directory (atomically, under a lock, so concurrent sweep members agree) and then
loads it exactly as a hub checkpoint is loaded: ``load_backbone(path)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText
from transformers.utils import logging as hf_logging

from vlmalign.errors import ConfigError
from vlmalign.models.backbone import VisionLanguageBackbone
from vlmalign.models.lora import LoraSettings, apply_lora
from vlmalign.models.processors import load_processor
from vlmalign.models.projector_alignment import align_projector
from vlmalign.models.tiny_llava import TinyLlavaSpec, build_tiny_llava
from vlmalign.models.tokenizer import train_word_tokenizer
from vlmalign.models.tower_pretraining import pretrain_tower
from vlmalign.utils.files import build_once, fingerprint, write_json_atomic

hf_logging.disable_progress_bar()

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
TINY_BUILD_VERSION = 2  # bump when the builder changes what it writes (2: world v3, tower pre-training heads)


def _dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise ConfigError(f"model.dtype={name!r} is not one of {sorted(DTYPES)}")
    return DTYPES[name]


def _lora_settings(lora: LoraSettings | Mapping | None) -> LoraSettings | None:
    if lora is None or isinstance(lora, LoraSettings):
        return lora
    try:
        return LoraSettings(**dict(lora))
    except TypeError as error:
        raise ConfigError(f"model.lora: {error}; allowed keys: {sorted(LoraSettings.__dataclass_fields__)}") from error


def _plain(mapping: Mapping) -> dict:
    """Hydra passes nested DictConfigs; processors want plain dicts (e.g. an image processor's ``size``)."""
    from omegaconf import DictConfig, OmegaConf

    return OmegaConf.to_container(mapping, resolve=True) if isinstance(mapping, DictConfig) else dict(mapping)


def load_backbone(
    name_or_path: str,
    dtype: str = "float32",
    lora: LoraSettings | dict | None = None,
    trust_remote_code: bool = False,
    gradient_checkpointing: bool = False,
    image_size: int | None = None,
    init_from: str | None = None,
    chat_template: str | None = None,
    processor_kwargs: Mapping | None = None,
    architecture: str | None = None,
    modules_from: Mapping | None = None,
    freeze: Sequence[str] | None = None,
) -> VisionLanguageBackbone:
    """Load any image-text-to-text checkpoint (hub id or local directory) and its processor.

    ``image_size`` is the model config's one home for the input resolution (data and eval
    interpolate it); the processor resizes to its own size, so it is not passed on. ``init_from``
    (a base run's exported model) replaces ``name_or_path`` when set. ``chat_template`` replaces the
    processor's (PaliGemma ships none; its preset gives a minimal one) and is saved with an export;
    ``processor_kwargs`` go to ``AutoProcessor.from_pretrained`` (e.g. Qwen2-VL's pixel budget, SmolVLM's
    ``do_image_splitting``). ``architecture`` (a preset's model class) is checked against what loaded, so a
    preset pointed at another family's checkpoint fails here, not deep inside a forward. ``modules_from``
    ({"source": checkpoint dir, "modules": [state-dict prefixes]}) replaces only those modules' weights by the
    source's (e.g. a trained vision tower under a fresh language model); ``freeze`` lists state-dict prefixes
    whose parameters stop training (before LoRA, which freezes everything but its adapters anyway).
    """
    name_or_path = init_from or name_or_path
    local = Path(name_or_path).expanduser()
    looks_local = name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1
    if not local.exists() and looks_local:
        raise ConfigError(f"model.name_or_path={name_or_path!r}: no such local directory")
    source = str(local) if local.exists() else name_or_path
    try:
        processor = load_processor(source, trust_remote_code=trust_remote_code, **_plain(processor_kwargs or {}))
        model = AutoModelForImageTextToText.from_pretrained(
            source, dtype=_dtype(dtype), trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"model.name_or_path={name_or_path!r} could not be loaded as an image-text-to-text checkpoint "
            f"(local directory or hub id; offline machines need a local copy): {error}"
        ) from error
    if architecture is not None and type(model).__name__ != architecture:
        raise ConfigError(f"model.name_or_path={name_or_path!r} is a {type(model).__name__}, but this preset is for "
                          f"{architecture} (model.architecture); use that family's preset or model=hf")
    if chat_template is not None:
        processor.chat_template = chat_template
    if getattr(processor, "chat_template", None) is None:
        raise ConfigError(f"model.name_or_path={name_or_path!r}: the processor has no chat template; set "
                          "model.chat_template (conf/model/paligemma_3b.yaml shows a minimal one)")
    if modules_from:
        load_module_weights(model, **_plain(modules_from))
    if freeze:
        freeze_modules(model, freeze)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    settings = _lora_settings(lora)
    if settings is not None and settings.enabled:
        model = apply_lora(model, settings)
    return VisionLanguageBackbone(model, processor, name=name_or_path)


def _matching(names, prefixes: Sequence[str], what: str) -> set[str]:
    """The names under any of ``prefixes`` (a whole dotted component: "model.vision_tower" is not
    "model.vision_tower2"); a prefix that matches nothing is a ConfigError listing what exists."""
    names = list(names)
    found: set[str] = set()
    for prefix in prefixes:
        hits = {n for n in names if n == prefix or n.startswith(prefix + ".")}
        if not hits:
            tops = sorted({".".join(n.split(".")[:2]) for n in names})
            raise ConfigError(f"{what}: {prefix!r} names no weights of this model; top-level modules: {tops}")
        found |= hits
    return found


def load_module_weights(model: torch.nn.Module, source: str, modules: Sequence[str]) -> None:
    """Copy the weights under ``modules`` (state-dict prefixes of ``model``) from the checkpoint in ``source``.

    The source is loaded through ``from_pretrained`` (the whole model, on the CPU) rather than read tensor by
    tensor: checkpoints store some families under other key names than the loaded model uses, and transformers
    owns that mapping.
    """
    try:
        donor = AutoModelForImageTextToText.from_pretrained(source, dtype=next(model.parameters()).dtype).state_dict()
    except (OSError, ValueError) as error:
        raise ConfigError(f"modules_from.source={source!r} could not be loaded as a checkpoint: {error}") from error
    own = model.state_dict()
    wanted = _matching(own, modules, "modules_from.modules")
    for name in sorted(wanted):
        if name not in donor or donor[name].shape != own[name].shape:
            found = tuple(donor[name].shape) if name in donor else "absent"
            raise ConfigError(f"modules_from: {name} is {found} in {source} but {tuple(own[name].shape)} in this "
                              "model (a different architecture)")
    model.load_state_dict({name: donor[name] for name in wanted}, strict=False)


def freeze_modules(model: torch.nn.Module, prefixes: Sequence[str]) -> None:
    """Stop training every parameter under ``prefixes`` (e.g. Synth²'s frozen image encoder)."""
    params = dict(model.named_parameters())
    for name in _matching(params, prefixes, "model.freeze"):
        params[name].requires_grad_(False)


def build_shapes_tokenizer():
    """Word-level tokenizer over the shapes world's closed vocabulary."""
    from vlmalign.data.shapes import corpus, vocabulary

    return train_word_tokenizer(corpus(), extra_words=[*vocabulary(), "user", "assistant", ":"])


def ensure_tiny_llava_checkpoint(cache_dir: str | Path, spec: TinyLlavaSpec, seed: int = 0) -> Path:
    """Build-or-reuse the tiny checkpoint directory; its name fingerprints everything that shapes it."""
    from vlmalign.data.shapes import vocabulary

    grid = spec.image_size // spec.patch_size
    if spec.tower_pretraining_steps and grid % 3:  # only a build pre-trains; a model loaded from init_from never does
        raise ConfigError(f"model.tower_pretraining_steps={spec.tower_pretraining_steps} needs a patch grid that tiles "
                          f"the 3x3 cells: model.image_size={spec.image_size} / model.patch_size={spec.patch_size} = "
                          f"{grid} patches a side (e.g. 96 / 32), or model.tower_pretraining_steps=0")
    if spec.projector_alignment_steps and grid != 3:  # the projector maps one token per cell to its object's words
        raise ConfigError(f"model.projector_alignment_steps={spec.projector_alignment_steps} needs one patch per grid "
                          f"cell: model.image_size={spec.image_size} / model.patch_size={spec.patch_size} = {grid} "
                          "patches a side, not 3 (e.g. 96 / 32)")
    key = fingerprint({"spec": spec.to_dict(), "seed": seed, "vocab": vocabulary(), "v": TINY_BUILD_VERSION})
    target = Path(cache_dir).expanduser() / f"tiny_llava-{key}"

    def build(scratch: Path) -> None:
        model, processor = build_tiny_llava(spec, build_shapes_tokenizer(), seed=seed)
        if spec.tower_pretraining_steps:  # a tower that already sees, as real checkpoints come
            report = pretrain_tower(model, processor.image_processor, spec.image_size,
                                    spec.tower_pretraining_steps, seed=seed)
            write_json_atomic(scratch / "tower_pretraining.json", {"steps": spec.tower_pretraining_steps, **report})
        if spec.projector_alignment_steps:  # LLaVA's stage 1: image tokens where the words are
            report = align_projector(model, processor.tokenizer, processor.image_processor, spec.image_size,
                                     spec.projector_alignment_steps, seed=seed)
            write_json_atomic(scratch / "projector_alignment.json", {"steps": spec.projector_alignment_steps, **report})
        model.save_pretrained(scratch)
        processor.save_pretrained(scratch)

    return build_once(target, build, what="tiny model")


def tiny_llava_backbone(
    cache_dir: str,
    seed: int = 0,
    dtype: str = "float32",
    lora: LoraSettings | dict | None = None,
    gradient_checkpointing: bool = False,
    init_from: str | None = None,
    modules_from: Mapping | None = None,
    freeze: Sequence[str] | None = None,
    **spec_fields,
) -> VisionLanguageBackbone:
    """The shapes-world backbone, built offline on first use, then loaded like any checkpoint.

    ``init_from`` starts from another run's exported weights (e.g. the cached SFT base) instead;
    ``modules_from`` and ``freeze`` are ``load_backbone``'s.
    """
    try:
        spec = TinyLlavaSpec(**spec_fields)
    except TypeError as error:
        raise ConfigError(f"model: {error}; allowed keys: {sorted(TinyLlavaSpec.__dataclass_fields__)}") from error
    except ValueError as error:
        raise ConfigError(str(error)) from error
    path = init_from or ensure_tiny_llava_checkpoint(cache_dir, spec, seed)
    return load_backbone(str(path), dtype=dtype, lora=lora, gradient_checkpointing=gradient_checkpointing,
                         modules_from=modules_from, freeze=freeze)
