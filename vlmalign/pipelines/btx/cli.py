"""``vlmalign-btx-merge``: merge branched experts into one model (Branch-Train-MiX, arXiv 2403.07816; docs/btx.md).

    vlmalign-btx-merge seed_model=<seed>/model experts='[<e1>/model,<e2>/model,<e3>/model,<e4>/model]'
    vlmalign-btx-merge ... method=btm                      # Branch-Train-Merge: everything averaged, dense
    vlmalign-btx-merge seed_model=<seed> method=upcycle num_experts=4   # sparse upcycling
    vlmalign-btx-merge ... router.init=activations router.domains='[captioning,counting,spatial,attribute_existence]'

The model lands in ``output`` (default <run dir>/model) with ``btx_merge.json`` (what was merged, digests);
``vlmalign-train experiment=btx/finetune model.init_from=<that>`` fine-tunes it.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from vlmalign.pipelines.btx.domain_data import shapes_domain_batches
from vlmalign.pipelines.btx.merge import btx_merge
from vlmalign.utils.cli import cli_task
from vlmalign.utils.compose import CONFIG_DIR


def plain(node):
    """A config node as plain Python (lists, dicts), None as is."""
    return OmegaConf.to_container(node, resolve=True) if node is not None else None


def merge_from_config(cfg: DictConfig) -> Path:
    router = cfg.router
    return btx_merge(
        seed_model=cfg.seed_model, output=cfg.output, experts=plain(cfg.experts) or [], method=cfg.method,
        top_k=cfg.top_k, seed_as_expert=cfg.seed_as_expert, num_experts=cfg.num_experts,
        expert_weights=plain(cfg.expert_weights), router_init=router.init, router_seed=router.seed,
        domains=plain(router.domains),
        domain_batches=shapes_domain_batches(plain(router.world), router.num_scenes, router.batch_size,
                                             router.max_length),
        max_relative_distance=cfg.max_relative_distance, dtype=cfg.dtype,
    )


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="btx_merge")
@cli_task("vlmalign-btx-merge")
def main(cfg: DictConfig) -> None:
    print(merge_from_config(cfg))


if __name__ == "__main__":
    main()
