"""``vlmalign-train``: the SFT base stage (resolved from the cache or built once), then the training job from it.

Returns the metric named by ``optimized_metric`` so Hydra sweepers can optimise it.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig
from pytorch_lightning.utilities.exceptions import SIGTERMException

from vlmalign.job import TrainingJob
from vlmalign.pipelines.base_model import resolve_base
from vlmalign.reliability.run_state import BaseBuildPreempted
from vlmalign.report.status import PREEMPTED
from vlmalign.utils import resolvers  # noqa: F401  (registers ${pid:} for conf/hydra)
from vlmalign.utils.cli import cli_task, exit_recorded
from vlmalign.utils.compose import CONFIG_DIR

PREEMPTED_EXIT_STATUS = 128 + 15  # what a shell reports for a process ended by SIGTERM


def train(cfg: DictConfig) -> dict[str, float]:
    """The whole ``vlmalign-train`` job for a composed config; returns the test metrics (``test/`` prefixed).

    Two explicit stages: the SFT base named by ``cfg.base`` (a path in the cache, built by its own job the first
    time), then this config's job started from it. The config is checked before either stage starts.
    """
    job = TrainingJob(cfg)
    return job.run(resolve_base(cfg))


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@cli_task("vlmalign")
def main(cfg: DictConfig) -> float | None:
    try:
        metrics = train(cfg)
    except SIGTERMException as preempted:  # the checkpoint is saved; a non-zero status tells the scheduler
        message = ("preempted while building the SFT base; nothing of that build is kept. Rerun the same command: the "
                   "base build starts over (resume=true is not needed)" if isinstance(preempted, BaseBuildPreempted)
                   else "preempted; the last checkpoint is saved. Rerun the same command with resume=true.")
        print(f"vlmalign: {message}", file=sys.stderr)
        exit_recorded(PREEMPTED_EXIT_STATUS, PREEMPTED, message)
    return metrics.get(cfg.optimized_metric) if cfg.optimized_metric else None


if __name__ == "__main__":
    main()
