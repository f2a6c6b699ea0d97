"""One training job: build the backbone, data, objective and trainer from a composed config, fit, evaluate, and
write the results. Below the entry points: ``vlmalign-train`` (train.py) runs it after resolving the SFT base
stage, and the pipelines (the SFT base build, each RLAIF-V round) run it directly.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from vlmalign.distributed import run as distributed
from vlmalign.eval.samples_table import log_samples_table
from vlmalign.models.reward_model import RewardModel, save_reward_model
from vlmalign.module import AlignmentModule, TrainingModule
from vlmalign.optim import build_optimizer_factory
from vlmalign.reliability.checkpoint_io import AtomicCheckpointIO, CheckpointError, checkpoint_problem
from vlmalign.reliability.resume import find_resume_checkpoint, record_identity
from vlmalign.reliability.run_state import RunStateCallback
from vlmalign.rl.online_module import OnlineRLModule
from vlmalign.rl.reward_module import RewardModelModule, reward_term
from vlmalign.utils.files import atomic_directory
from vlmalign.utils.instantiate import build
from vlmalign.utils.reporting import print_metrics_table, write_results
from vlmalign.utils.secrets import check_no_literal_secrets, redact_secrets
from vlmalign.validation import FILE_DATAMODULE, validate_run_config

log = logging.getLogger("vlmalign")
GUARD = "vlmalign.reliability.numerics.NonFiniteGuard"


def resume_point(cfg: DictConfig, output_dir: Path) -> str | None:
    """The checkpoint to resume from (explicit ``ckpt_path`` or found by ``resume=true``), verified now,
    before any base model is trained, so a bad path fails in seconds."""
    if cfg.ckpt_path:
        problem = checkpoint_problem(cfg.ckpt_path)
        if problem:
            raise CheckpointError(f"ckpt_path: {problem}")
        return str(cfg.ckpt_path)
    if cfg.get("resume"):
        found = find_resume_checkpoint(Path(cfg.paths.runs_dir), cfg, exclude=output_dir)
        if found is None:
            log.info("resume=true: no checkpoint of an unfinished run of this config under %s; starting fresh",
                     cfg.paths.runs_dir)
            return None
        log.info("resume=true: resuming from %s", found)
        return str(found)
    return None


def warn_unused_reference(cfg: DictConfig, objective) -> str | None:
    """A warning (logged and returned) when the objective reads no reference policy but ``reference`` is a strategy
    that builds one (SimPO, ORPO, SFT with the default reference=frozen): a second model or a cache pass for nothing."""
    target = OmegaConf.select(cfg, "reference._target_", default=None)
    if (objective.needs_reference or objective.token_kl_views or objective.reads_rewards or not target
            or target.endswith(".NoReference")):  # a reward-model run builds no reference at all
        return None
    message = (f"objective terms {list(objective.terms)} read no reference policy, but reference._target_={target} "
               "will build one (a frozen copy or a cached pass over the data) that nothing reads; pass reference=none")
    log.warning(message)
    return message


class TrainingJob:
    """One training job for a composed config, in two steps so that a caller can run a stage in between.

    Constructing it checks everything a config can get wrong (literal secrets, the whole config, the checkpoint
    to resume from) and records the run's identity, before any model is built; ``run(init)`` then builds the
    backbone from ``init`` (the model's keyword arguments that load its starting weights: ``init_from`` /
    ``modules_from``, or {}), fits, evaluates and writes the results. ``vlmalign-train`` resolves the SFT base
    between the two (``vlmalign.pipelines.base_model.resolve_base``); a job never builds a base itself.
    ``building_base``: this job is the SFT base build of another (``pipelines/base_model.py``), trained in a scratch
    folder and never resumed.
    """

    def __init__(self, cfg: DictConfig, building_base: bool = False) -> None:
        self.cfg, self.building_base = cfg, building_base
        self.started = time.perf_counter()
        check_no_literal_secrets(cfg)
        pl.seed_everything(cfg.seed, workers=True)
        self.objective = build(cfg.objective, "objective")
        validate_run_config(cfg, self.objective)  # every config mistake we can see, before anything expensive
        warn_unused_reference(cfg, self.objective)
        self.output_dir = Path(cfg.paths.output_dir)
        self.ckpt_path = resume_point(cfg, self.output_dir)
        record_identity(self.output_dir, cfg, self.ckpt_path)

    def run(self, init: dict) -> dict[str, float]:
        """Build, fit, evaluate, write; returns the test metrics (``test/`` prefixed)."""
        cfg, objective, output_dir, ckpt_path, started = (self.cfg, self.objective, self.output_dir, self.ckpt_path,
                                                          self.started)
        with distributed.building_context(cfg):  # ZeRO-3 with distributed.zero3_init: built as shards
            backbone = build(cfg.model, "model", **init)
        distributed.prepare_backbone(cfg, backbone)  # ZeRO-3 workarounds (vlmalign/distributed/workarounds.py)
        datamodule = build(cfg.data, "data", processor=backbone.processor, views=objective.views)
        if hasattr(datamodule, "prepare_from_policy"):  # data made from the starting policy's own outputs
            with distributed.before_fit(backbone):
                datamodule.prepare_from_policy(backbone)
        if objective.reads_rewards:  # reward-label noise: the training pairs, flipped before anything memoises them
            term = reward_term(objective)
            datamodule.flip_train_pairs(term.label_noise, term.label_noise_seed)
        if cfg.performance.encode_once:
            datamodule.encode_once()
        module = build_module(cfg, backbone, objective)
        shapes_eval = evaluates_the_shapes_world(cfg) and not objective.reads_rewards  # a reward model has no captions
        evaluator = build(cfg.eval, "eval") if shapes_eval else None
        callbacks = [build(node, f"callbacks.{name}") for name, node in (cfg.callbacks or {}).items()
                     if node and (shapes_eval or name != "hallucination_eval")]
        # Always on: RNG state in checkpoints and a checkpoint on preemption (exact resume), NaN/Inf guard.
        callbacks += [RunStateCallback(resumable=not self.building_base),
                      build(cfg.numerics, "numerics", _target_=GUARD)]
        loggers = [build(node, f"logger.{name}") for name, node in (cfg.logger or {}).items() if node]
        if not loggers:  # Lightning refuses a LearningRateMonitor without a logger; with none it has nowhere to write
            callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.LearningRateMonitor)]
        # The online trainer clips its own gradients (manual optimisation): the trainer's clip value moved into it.
        clipping = {"gradient_clip_val": None} if objective.online else {}
        trainer = build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False,
                        plugins=distributed.checkpoint_plugins(cfg, [AtomicCheckpointIO()]), **clipping)
        for logger in loggers:
            logger.log_hyperparams(redact_secrets(OmegaConf.to_container(cfg, resolve=True)))

        if isinstance(module, OnlineRLModule):  # the contrastive baseline's offline pass, from the starting policy
            with distributed.before_fit(backbone):
                module.prepare_rewards(datamodule)
        module.reference.prepare(datamodule, objective.views, device=trainer.strategy.root_device)

        columns: dict[str, dict[str, float]] = {}
        initial: dict[str, float] = {}  # the starting model's scores, kept in metrics.json beside the final ones
        if cfg.evaluate_initial and evaluator is not None:
            with distributed.before_fit(backbone):
                initial = evaluator.evaluate(backbone).metrics
            columns["base" if "init_from" in init else "initial"] = initial
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        distributed.after_fit(trainer, backbone)  # ZeRO-3: shards gathered back into an ordinary model

        with atomic_directory(output_dir / "model") as scratch:  # replaced whole, never half-written
            if isinstance(module, RewardModelModule):  # the backbone and its head (reward=model loads it by path)
                save_reward_model(module.reward_model, scratch)
            else:
                backbone.save_pretrained(scratch, merge_lora=cfg.export.merge_lora)
        samples: list[dict] = []
        metrics: dict[str, float] = {}
        if evaluator is not None:
            result = evaluator.evaluate(backbone)
            log_samples_table(loggers, "test/samples", evaluator, result.samples, step=trainer.global_step)
            columns[cfg.task_name], samples = result.metrics, result.samples
            metrics = {**{f"initial/{k}": v for k, v in initial.items()},
                       **{f"test/{k}": v for k, v in result.metrics.items()}}
        if isinstance(module, OnlineRLModule):  # e.g. the contrastive baseline's difficulty calibration
            metrics.update({f"reward/{key}": value for key, value in module.reward.report().items()})
        metrics["time/total_s"] = time.perf_counter() - started
        write_results(output_dir, metrics, samples)
        for logger in loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
            logger.finalize("success")
        if evaluator is not None:
            print_metrics_table(columns, title=f"{cfg.task_name}: {evaluator.num_scenes} held-out scenes")
        log.info("results written to %s (%.0f s)", output_dir, metrics["time/total_s"])
        return metrics


def build_module(cfg: DictConfig, backbone, objective) -> TrainingModule:
    """The LightningModule that trains ``objective``: a reward model's (``objective=reward_model``: the backbone plus
    a scalar head, no reference), the online trainer (``objective=grpo``, ``rloo``, ``reinforce_pp``: rollouts,
    ``reward`` and ``rollout`` from config) or the AlignmentModule of every other objective."""
    optimizer, scheduler = build_optimizer_factory(cfg.optimizer), build(cfg.scheduler, "scheduler")
    if objective.reads_rewards:
        return RewardModelModule(RewardModel(backbone, seed=cfg.seed), objective, optimizer, scheduler)
    reference = build(cfg.reference, "reference")
    if objective.online:
        return OnlineRLModule(backbone, objective, build(cfg.reward, "reward"), build(cfg.rollout, "rollout"),
                              optimizer, scheduler, reference, share_prefix=cfg.performance.share_prefix,
                              max_grad_norm=OmegaConf.select(cfg, "trainer.gradient_clip_val"),
                              rollout_log=Path(cfg.paths.output_dir) / "rollouts.jsonl")
    return AlignmentModule(backbone, objective, optimizer=optimizer, scheduler=scheduler, reference=reference,
                           share_prefix=cfg.performance.share_prefix)


def evaluates_the_shapes_world(cfg: DictConfig) -> bool:
    """Whether the shapes-world evaluation (final and during validation) scores this run. Not when it trains on a
    dataset file: scenes of a world it never saw scored a real model at zero, printed as a 30-row table. Such a model
    is scored by the benchmark CLI (``vlmalign-eval``) on the exported ``model/``."""
    if OmegaConf.select(cfg, "data._target_") == FILE_DATAMODULE:
        log.info("data=%s is a dataset file, not the shapes world: no shapes-world evaluation. Score the exported "
                 "model with vlmalign-eval (README, 'Public hallucination benchmarks')",
                 OmegaConf.select(cfg, "data.adapter._target_"))
        return False
    return bool(cfg.get("eval"))
