"""``vlmalign-train``: instantiate the run from Hydra config, fit, evaluate, write results.

Returns the metric named by ``optimized_metric`` so Hydra sweepers can optimise it.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from vlmalign.errors import VlmalignError
from vlmalign.module import AlignmentModule
from vlmalign.optim import build_optimizer_factory
from vlmalign.pipelines.base_model import ensure_base_model
from vlmalign.utils.instantiate import build
from vlmalign.utils.reporting import print_metrics_table, write_results

log = logging.getLogger("vlmalign")
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def train(cfg: DictConfig) -> dict[str, float]:
    """The whole job for a composed config; returns the test metrics (``test/`` prefixed)."""
    started = time.perf_counter()
    pl.seed_everything(cfg.seed, workers=True)
    objective = build(cfg.objective, "objective")
    init = {}
    if cfg.get("base"):
        init["init_from"] = str(ensure_base_model(cfg.base, cfg.paths.cache_dir) / "model")
    backbone = build(cfg.model, "model", **init)
    datamodule = build(cfg.data, "data", processor=backbone.processor, views=objective.views)
    module = AlignmentModule(
        backbone,
        objective,
        optimizer=build_optimizer_factory(cfg.optimizer),
        scheduler=build(cfg.scheduler, "scheduler"),
        reference=build(cfg.reference, "reference"),
    )
    evaluator = build(cfg.eval, "eval")
    callbacks = [build(node, f"callbacks.{name}") for name, node in (cfg.callbacks or {}).items() if node]
    loggers = [build(node, f"logger.{name}") for name, node in (cfg.logger or {}).items() if node]
    if not loggers:  # Lightning refuses a LearningRateMonitor without a logger; with none it has nowhere to write
        callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.LearningRateMonitor)]
    trainer = build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    module.reference.prepare(datamodule, objective.views, device=trainer.strategy.root_device)

    columns: dict[str, dict[str, float]] = {}
    if cfg.evaluate_initial:
        columns["base" if init else "initial"] = evaluator.evaluate(backbone).metrics
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)

    output_dir = Path(cfg.paths.output_dir)
    backbone.save_pretrained(output_dir / "model")
    result = evaluator.evaluate(backbone)
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
    try:
        metrics = train(cfg)
    except VlmalignError as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"vlmalign: error: {error}\n(set HYDRA_FULL_ERROR=1 for the full traceback)", file=sys.stderr)
        sys.exit(2)
    return metrics.get(cfg.optimized_metric) if cfg.optimized_metric else None


if __name__ == "__main__":
    main()
