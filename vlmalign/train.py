"""``vlmalign-train``: instantiate the run from Hydra config, fit, evaluate, write results.

Returns the metric named by ``optimized_metric`` so Hydra sweepers can optimise it.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities.exceptions import SIGTERMException

from vlmalign.distributed import run as distributed
from vlmalign.errors import VlmalignError
from vlmalign.eval.samples_table import log_samples_table
from vlmalign.module import AlignmentModule
from vlmalign.optim import build_optimizer_factory
from vlmalign.pipelines.base_model import base_init
from vlmalign.reliability.checkpoint_io import AtomicCheckpointIO, CheckpointError, checkpoint_problem
from vlmalign.reliability.resume import find_resume_checkpoint, record_identity
from vlmalign.reliability.run_state import RunStateCallback
from vlmalign.utils import resolvers  # noqa: F401  (registers ${pid:} for conf/hydra)
from vlmalign.utils.cli import exit_on_user_error
from vlmalign.utils.files import atomic_directory
from vlmalign.utils.instantiate import build
from vlmalign.utils.reporting import print_metrics_table, write_results
from vlmalign.utils.secrets import check_no_literal_secrets, install_log_redaction, redact_secrets
from vlmalign.validation import validate_run_config

log = logging.getLogger("vlmalign")
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
GUARD = "vlmalign.reliability.numerics.NonFiniteGuard"
PREEMPTED_EXIT_STATUS = 128 + 15  # what a shell reports for a process ended by SIGTERM


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
            log.info("resume=true: no unfinished run of this config under %s; starting fresh", cfg.paths.runs_dir)
            return None
        log.info("resume=true: resuming from %s", found)
        return str(found)
    return None


def warn_unused_reference(cfg: DictConfig, objective) -> str | None:
    """A warning (logged and returned) when the objective reads no reference policy but ``reference`` is a strategy
    that builds one (SimPO, ORPO, SFT with the default reference=frozen): a second model or a cache pass for nothing."""
    target = OmegaConf.select(cfg, "reference._target_", default=None)
    if objective.needs_reference or objective.token_kl_views or not target or target.endswith(".NoReference"):
        return None
    message = (f"objective terms {list(objective.terms)} read no reference policy, but reference._target_={target} "
               "will build one (a frozen copy or a cached pass over the data) that nothing reads; pass reference=none")
    log.warning(message)
    return message


def train(cfg: DictConfig) -> dict[str, float]:
    """The whole job for a composed config; returns the test metrics (``test/`` prefixed)."""
    started = time.perf_counter()
    check_no_literal_secrets(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    objective = build(cfg.objective, "objective")
    validate_run_config(cfg, objective)  # every config mistake we can see, before anything expensive
    warn_unused_reference(cfg, objective)
    output_dir = Path(cfg.paths.output_dir)
    ckpt_path = resume_point(cfg, output_dir)
    record_identity(output_dir, cfg, ckpt_path)
    init = base_init(cfg)
    with distributed.building_context(cfg):  # ZeRO-3 with distributed.zero3_init: built as shards
        backbone = build(cfg.model, "model", **init)
    distributed.prepare_backbone(cfg, backbone)  # ZeRO-3 workarounds (vlmalign/distributed/workarounds.py)
    datamodule = build(cfg.data, "data", processor=backbone.processor, views=objective.views)
    if hasattr(datamodule, "prepare_from_policy"):  # data made from the starting policy's own outputs
        with distributed.before_fit(backbone):
            datamodule.prepare_from_policy(backbone)
    if cfg.performance.encode_once:
        datamodule.encode_once()
    module = AlignmentModule(
        backbone,
        objective,
        optimizer=build_optimizer_factory(cfg.optimizer),
        scheduler=build(cfg.scheduler, "scheduler"),
        reference=build(cfg.reference, "reference"),
        share_prefix=cfg.performance.share_prefix,
    )
    evaluator = build(cfg.eval, "eval")
    callbacks = [build(node, f"callbacks.{name}") for name, node in (cfg.callbacks or {}).items() if node]
    # Always on: RNG state in checkpoints and a checkpoint on preemption (exact resume), NaN/Inf guard.
    callbacks += [RunStateCallback(), build(cfg.numerics, "numerics", _target_=GUARD)]
    loggers = [build(node, f"logger.{name}") for name, node in (cfg.logger or {}).items() if node]
    if not loggers:  # Lightning refuses a LearningRateMonitor without a logger; with none it has nowhere to write
        callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.LearningRateMonitor)]
    trainer = build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False,
                    plugins=distributed.checkpoint_plugins(cfg, [AtomicCheckpointIO()]))
    for logger in loggers:
        logger.log_hyperparams(redact_secrets(OmegaConf.to_container(cfg, resolve=True)))

    module.reference.prepare(datamodule, objective.views, device=trainer.strategy.root_device)

    columns: dict[str, dict[str, float]] = {}
    if cfg.evaluate_initial:
        with distributed.before_fit(backbone):
            columns["base" if "init_from" in init else "initial"] = evaluator.evaluate(backbone).metrics
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    distributed.after_fit(trainer, backbone)  # ZeRO-3: shards gathered back into an ordinary model

    with atomic_directory(output_dir / "model") as scratch:  # replaced whole, never half-written
        backbone.save_pretrained(scratch, merge_lora=cfg.export.merge_lora)
    result = evaluator.evaluate(backbone)
    log_samples_table(loggers, "test/samples", evaluator, result.samples, step=trainer.global_step)
    columns[cfg.task_name] = result.metrics
    metrics = {f"test/{k}": v for k, v in result.metrics.items()}
    metrics["time/total_s"] = time.perf_counter() - started
    write_results(output_dir, metrics, result.samples)
    for logger in loggers:
        logger.log_metrics(metrics, step=trainer.global_step)
        logger.finalize("success")
    print_metrics_table(columns, title=f"{cfg.task_name}: {evaluator.num_scenes} held-out scenes")
    log.info("results written to %s (%.0f s)", output_dir, metrics["time/total_s"])
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    install_log_redaction()
    try:
        metrics = train(cfg)
    except SIGTERMException:  # preempted: the checkpoint is saved; a non-zero status tells the scheduler
        print("vlmalign: preempted; the last checkpoint is saved. Rerun the same command with resume=true.",
              file=sys.stderr)
        sys.exit(PREEMPTED_EXIT_STATUS)
    except VlmalignError as error:
        exit_on_user_error("vlmalign", error)
    return metrics.get(cfg.optimized_metric) if cfg.optimized_metric else None


if __name__ == "__main__":
    main()
