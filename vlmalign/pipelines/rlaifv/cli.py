"""``vlmalign-rlaifv``: the RLAIF-V loop as one Hydra command (``conf/rlaifv.yaml``)."""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from vlmalign.pipelines.rlaifv.pipeline import RLAIFVPipeline
from vlmalign.utils.cli import cli_task
from vlmalign.utils.compose import CONFIG_DIR
from vlmalign.utils.reporting import print_metrics_table
from vlmalign.utils.secrets import check_no_literal_secrets

log = logging.getLogger("vlmalign")
SHOWN = ("chair_i", "chair_s", "cover", "mentions_per_caption")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="rlaifv")
@cli_task("vlmalign-rlaifv")
def main(cfg: DictConfig) -> float | None:
    check_no_literal_secrets(cfg)
    summary = RLAIFVPipeline(cfg).run()
    columns = {f"round {r['round']}": {k: r[f"test/{k}"] for k in SHOWN if f"test/{k}" in r} for r in summary}
    print_metrics_table(columns, title=f"RLAIF-V: held-out metrics after each round ({cfg.workdir})")
    log.info("summary written to %s/summary.json", cfg.workdir)
    return summary[-1].get("test/chair_i")


if __name__ == "__main__":
    main()
