"""Fail fast on config combinations that cannot run, before anything expensive (SFT base, backbone, data).

``validate_run_config(cfg, objective)`` runs right after the objective is built. It reads the composed
config only (nothing is instantiated but the reference *class*), collects every problem it finds and
raises one ConfigError listing them all, each naming the config keys involved, the values given and
the fix. The checks reuse the knowledge that lives elsewhere (a value lives in one place, docs/design.md
rule 5): the views each data task has (``TASK_VIEWS``), which views show the corrupted image m'
(the collator's ``VIEWS``), and what each reference strategy can serve (``serving_problems``). The
components keep their own checks too; these only move the failure before minutes of work.

Only keys that exist are checked: configs for HF models or other datasets may lack some of them.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from hydra.utils import get_class, get_method, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from vlmalign.data.collate import VIEWS as VIEW_SOURCES
from vlmalign.data.datamodule import TASK_VIEWS
from vlmalign.data.file_reading import read_files
from vlmalign.data.nsft import max_turns_problem
from vlmalign.data.shapes.world import world_spec
from vlmalign.data.shapes_prompts import group_problem
from vlmalign.data.shapes_sft import SHARES, mixture_problems
from vlmalign.distributed.checks import deepspeed_problems
from vlmalign.errors import ConfigError, VlmalignError
from vlmalign.models.reward_model import reward_model_identity
from vlmalign.objectives.base import Objective
from vlmalign.reference import (
    FrozenCopyReference,
    LoraDisabledReference,
    NoReference,
    PrecomputedReference,
    ReferencePolicy,
)
from vlmalign.reference.base import MODEL_BACKED
from vlmalign.reference.lora_disabled import NEEDS_LORA

_ABSENT = object()


def validate_run_config(cfg: DictConfig, objective: Objective, read_data: bool = True) -> None:
    """Raise one ConfigError listing every problem of the composed run config ``cfg`` (nothing if it can run).
    ``read_data``: also read a file dataset's rows and images (``False``: the config alone, no file opened)."""
    problems: list[str] = []
    checks = [_check_reference, _check_views, _check_image_sizes, _check_world, _check_task_mixture, _check_strategy,
              _check_trainer_and_batch, _check_optimizer_and_scheduler, _check_online_rl]
    for check in [*checks, _check_data_files] if read_data else checks:
        try:
            problems.extend(check(cfg, objective))
        except _Unreadable as error:
            problems.append(str(error))
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        bullets = "\n".join(f"  - {problem}" for problem in problems)
        raise ConfigError(f"{len(problems)} problems in the config (found before any training):\n{bullets}")


class _Unreadable(Exception):
    """A key whose value cannot be resolved (bad interpolation); the message names it."""


def _get(cfg: DictConfig, key: str) -> Any:
    """The resolved value at ``key``, ``_ABSENT`` when the key does not exist or is ``???``."""
    try:
        return OmegaConf.select(cfg, key, default=_ABSENT)
    except OmegaConfBaseException as error:
        raise _Unreadable(f"{key} cannot be resolved: {str(error).splitlines()[0]}") from error


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _terms_using(objective: Objective, views) -> list[str]:
    return [name for name, term in objective.terms.items() if set(term.views) & set(views)]


def _reference_class(cfg: DictConfig) -> tuple[type[ReferencePolicy] | None, list[str]]:
    node = _get(cfg, "reference")
    if node is None:  # no reference node: the module falls back to NoReference
        return NoReference, []
    if node is _ABSENT or not isinstance(node, DictConfig) or "_target_" not in node:
        return None, []
    target = node._target_
    try:
        cls = get_class(target)
    except Exception as error:  # noqa: BLE001 - hydra raises ImportError/ValueError/... for a bad path
        return None, [f"reference._target_={target} cannot be imported ({error}); pick an option of conf/reference "
                      "(frozen, lora_disabled, none, precomputed)"]
    if not (isinstance(cls, type) and issubclass(cls, ReferencePolicy)):
        return None, [f"reference._target_={target} is not a vlmalign.reference.ReferencePolicy"]
    return cls, []


def _check_reference(cfg: DictConfig, objective: Objective) -> list[str]:
    """Checks 1 and 4: the reference strategy serves the objective; lora_disabled has a LoRA policy."""
    cls, problems = _reference_class(cfg)
    if cls is None:
        return problems
    problems += cls.serving_problems(objective)
    lora = _get(cfg, "model.lora.enabled")
    if issubclass(cls, LoraDisabledReference) and lora is not _ABSENT and lora is not True:
        problems.append(f"{NEEDS_LORA} (model.lora.enabled={lora})")
    return problems


def _check_views(cfg: DictConfig, objective: Objective) -> list[str]:
    """Check 2: the data provides every view the objective scores, with a corruption for the m' views."""
    problems = []
    views = objective.views
    task = _get(cfg, "data.task")
    reported: set[str] = set()
    max_turns = _get(cfg, "data.negatives_max_turns")
    if max_turns is not _ABSENT and (problem := max_turns_problem(max_turns)):
        problems.append(problem)
    if _get(cfg, "data.pair_kind") == "onpolicy" and task != "preference":
        problems.append("data.pair_kind=onpolicy makes preference pairs from the policy's captions, but "
                        f"data.task={task!r}; use data=shapes_preference")
    if task is not _ABSENT and task not in TASK_VIEWS:
        problems.append(f"data.task={task!r} is not one of {tuple(TASK_VIEWS)}")
    elif task is not _ABSENT:
        lacking = [v for v in views if v not in TASK_VIEWS[task]]
        if lacking:
            reported.update(lacking)
            if "negatives" in lacking:
                hint = "the negatives dialogue is nSFT data: use data=shapes_nsft"
            elif task == "sft":
                needs_corruption = any(VIEW_SOURCES.get(v, (v, False))[1] for v in lacking)
                hint = ("it is SFT data, one response per example with no preference pairs or corrupted images: use "
                        "preference data (data=shapes_preference"
                        + (", with corruption=crop_0_20 or another conf/corruption option" if needs_corruption else "")
                        + ") or an SFT objective (objective=sft)")
            else:
                hint = "use data whose task has them, or an objective without those terms"
            problems.append(f"objective terms {_terms_using(objective, lacking)} need views {lacking} but data.task="
                            f"{task} has only {list(TASK_VIEWS[task])}; {hint}")
    corrupted = [v for v in views if VIEW_SOURCES.get(v, (v, False))[1] and v not in reported]
    if corrupted and _get(cfg, "data.corruption") is None:
        terms = _terms_using(objective, corrupted)
        problems.append(
            f"objective terms {terms} need views {corrupted} (the corrupted image m' of mDPO's conditional term) but "
            f"data.corruption is null; set corruption=crop_0_20 (or another conf/corruption option) on preference "
            f"data, or use an objective without those terms (e.g. objective.terms.{terms[0]}.weight=0)"
        )
    return problems


def _check_image_sizes(cfg: DictConfig, objective: Objective) -> list[str]:
    """Check 3: patches tile the image; data and eval render at the model's resolution."""
    problems = []
    size, patch = _get(cfg, "model.image_size"), _get(cfg, "model.patch_size")
    if _is_int(size) and _is_int(patch) and patch > 0 and size % patch:
        problems.append(f"model.image_size={size} is not divisible by model.patch_size={patch}; choose a multiple "
                        f"(e.g. model.image_size={size - size % patch or patch})")
    for key in ("world.image_size", "data.image_size"):
        value = _get(cfg, key)
        if value is _ABSENT or size is _ABSENT or value == size:
            continue
        problems.append(f"{key}={value} differs from model.image_size={size}: the model sees images at its own size "
                        f"(it is the one home of the resolution; {key} normally interpolates "
                        "${model.image_size}); drop the override and set model.image_size instead")
    return problems


def _check_world(cfg: DictConfig, objective: Objective) -> list[str]:
    """Check 3b: the shapes world's settings (WorldSpec checks them: ranges, object counts, prior tables)."""
    world = _get(cfg, "world")
    if world is _ABSENT:
        return []
    try:
        world_spec(OmegaConf.to_container(world, resolve=True) if isinstance(world, DictConfig) else world, "world")
    except ConfigError as error:
        return [str(error)]
    return []


def _check_task_mixture(cfg: DictConfig, objective: Objective) -> list[str]:
    """Check 3c: the shapes SFT mixture's fractions and shares (the dataset's own check, run before the base)."""
    keys = ("caption_fraction", "existence_fraction", "existence_answer", "domain", *SHARES)
    given = {key: _get(cfg, f"data.{key}") for key in keys}
    given = {key: value for key, value in given.items() if value is not _ABSENT}
    if not set(keys[:2]) <= set(given):  # not a shapes SFT mixture (file data, Synth²'s mix)
        return []
    return [f"data.{problem}" for problem in mixture_problems(**given)]


def _check_strategy(cfg: DictConfig, objective: Objective) -> list[str]:
    """Check 5: DeepSpeed needs GPUs and bf16; a frozen-copy reference cannot copy a model built as ZeRO-3 shards
    (the rules live with the DeepSpeed code: vlmalign/distributed/checks.py)."""
    problems = []
    cls, _ = _reference_class(cfg)
    frozen = cls is not None and issubclass(cls, FrozenCopyReference)
    # conf/strategy is `@package trainer`: the strategy lives at trainer.strategy (a top-level node is read too).
    for key in ("trainer.strategy", "strategy"):
        problems += deepspeed_problems(key, _get(cfg, key), _get(cfg, "trainer.accelerator"),
                                       _get(cfg, "trainer.precision"), frozen, _get(cfg, "distributed.zero3_init"))
    return problems


def _check_trainer_and_batch(cfg: DictConfig, objective: Objective) -> list[str]:
    """Check 6: a finite, positive training length; a positive validation interval; a non-empty batch."""
    problems = []
    max_steps, max_epochs = _get(cfg, "trainer.max_steps"), _get(cfg, "trainer.max_epochs")
    if max_steps is not _ABSENT:
        epochs_set = _is_int(max_epochs) and max_epochs > 0
        if not (_is_int(max_steps) and (max_steps > 0 or (max_steps == -1 and epochs_set))):
            epochs = f" with trainer.max_epochs={max_epochs!r}" if max_steps == -1 else ""
            problems.append(f"trainer.max_steps={max_steps!r}{epochs} cannot run: trainer.max_steps must be a positive "
                            "number of optimizer steps (or -1 with trainer.max_epochs set to a positive number of "
                            "epochs)")
    interval = _get(cfg, "trainer.val_check_interval")
    if _is_int(interval):
        if interval < 1:
            problems.append(f"trainer.val_check_interval={interval} must be >= 1 (steps between validations), "
                            "a fraction of an epoch in (0, 1], or null")
        # An interval beyond max_steps is allowed: it is how short runs (and small bases) skip validation.
    batch_size = _get(cfg, "data.batch_size")
    if batch_size is not _ABSENT and not (_is_int(batch_size) and batch_size >= 1):
        problems.append(f"data.batch_size={batch_size!r} must be an integer >= 1")
    return problems


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_optimizer_and_scheduler(cfg: DictConfig, objective: Objective) -> list[str]:
    """Check 7: the optimizer's and the scheduler's numeric arguments are numbers (``optimizer.lr=abc`` failed only
    once the SFT base had trained, naming the group): each key whose default in the target's signature is a
    number (or a tuple of numbers, AdamW's betas) must be given as one."""
    problems = []
    for group in ("optimizer", "scheduler"):
        node = _get(cfg, group)
        if not isinstance(node, DictConfig) or not isinstance(node.get("_target_"), str):
            continue
        try:
            parameters = inspect.signature(get_method(node._target_)).parameters  # a class or a function
        except (ValueError, TypeError, ImportError, AttributeError) as error:
            problems.append(f"{group}._target_={node._target_} cannot be imported ({error})")
            continue
        for key in node:
            if key.startswith("_") or key not in parameters:
                continue
            default, value = parameters[key].default, _get(cfg, f"{group}.{key}")
            if _is_number(default) and not _is_number(value):
                problems.append(f"{group}.{key}={value!r} must be a number (default {default})")
            elif isinstance(default, tuple) and default and all(map(_is_number, default)) and not (
                    isinstance(value, Sequence) and len(value) == len(default) and all(map(_is_number, value))):
                problems.append(f"{group}.{key}={value!r} must be {len(default)} numbers, like {list(default)}")
        warmup = _get(cfg, f"{group}.num_warmup_steps")
        if warmup is not _ABSENT and warmup is not None and not (_is_int(warmup) and warmup >= 0):
            problems.append(f"{group}.num_warmup_steps={warmup!r} must be an integer >= 0")
    return problems


FILE_DATAMODULE = "vlmalign.data.file_datamodule.FileDataModule"


def _check_data_files(cfg: DictConfig, objective: Objective) -> list[str]:
    """Check 8: a file dataset's files exist and every row can be used (or ``on_error=skip`` leaves enough), images
    included, before any model is built. The datamodule reuses this reading (``vlmalign.data.file_reading``)."""
    data = _get(cfg, "data")
    if not isinstance(data, DictConfig) or data.get("_target_") != FILE_DATAMODULE:
        return []
    if _get(cfg, "data.train_file") in (_ABSENT, None, ""):
        return ["data.train_file is not set: give the file(s) to train on, e.g. data.train_file=/path/pairs.jsonl "
                "(a path, a glob or a list)"]
    knobs = ("train_file", "val_file", "val_fraction", "split_seed", "image_root", "format", "streaming", "on_error",
             "check_images", "cache_dir")
    try:
        adapter = instantiate(data.adapter)
        values = {key: _get(cfg, f"data.{key}") for key in knobs}
        values = {key: (None if value is _ABSENT else value) for key, value in values.items()}
        values = {key: OmegaConf.to_container(v) if isinstance(v, (DictConfig, ListConfig)) else v
                  for key, v in values.items()}
        read_files(adapter, values["train_file"], values["val_file"], values["val_fraction"], values["split_seed"],
                   values["image_root"], values["format"], bool(values["streaming"]), values["on_error"],
                   bool(values["check_images"]), values["cache_dir"])
    except VlmalignError as error:
        return [str(error)]
    return []


def _check_online_rl(cfg: DictConfig, objective: Objective) -> list[str]:
    """Check 9: an online objective (objective=grpo, rloo, reinforce_pp, ppo) has a sampler and a reward, groups that
    divide the batch and a reference that can serve it; a reward model given by path is one; k >= 1 for the
    contrastive baseline. All before any rollout (the reward model's family and tokenizer are checked against the
    policy when the online trainer is built, still before any rollout)."""
    if not objective.online:
        return []
    problems = []
    for group, example in (("rollout", "rollout=default"), ("reward", "reward=scene")):
        if not isinstance(_get(cfg, group), DictConfig):
            problems.append(f"objective terms {list(objective.terms)} learn from the policy's own samples but no "
                            f"{group} is configured; add {example}")
    group_size = _get(cfg, "rollout.group_size")
    batch_size = _get(cfg, "data.batch_size")
    if group_size is not _ABSENT and batch_size is not _ABSENT:
        problem = group_problem(batch_size, group_size, "rollout.group_size")
        if problem:
            problems.append(problem)
    cls, _ = _reference_class(cfg)
    if cls is not None and issubclass(cls, PrecomputedReference):
        problems.append("reference=precomputed caches log-probs of a dataset's responses before training, but online "
                        f"RL trains on responses sampled during training; choose {MODEL_BACKED} (or reference=none "
                        "with kl_coef=0)")
    k = _get(cfg, "reward.k")
    if k is not _ABSENT and not (_is_int(k) and k >= 1):
        problems.append(f"reward.k={k!r} must be an integer >= 1: the contrastive baseline is the mean reward of k "
                        "samples of the SFT policy per prompt")
    for node in ("reward", "reward.base"):  # a reward model, plain or under the contrastive baseline
        if _get(cfg, f"{node}._target_") != MODEL_REWARD:
            continue
        path = _get(cfg, f"{node}.path")
        if path in (_ABSENT, None, ""):
            problems.append(f"the reward model needs {node}.path: the model/ folder of an objective=reward_model run")
            continue
        try:
            reward_model_identity(path)
        except ConfigError as error:
            problems.append(str(error))
    return problems


MODEL_REWARD = "vlmalign.rl.rewards.ModelReward"
