"""Compose ``conf/train.yaml`` outside a ``@hydra.main`` run: the one way code reads the project's config."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict

from vlmalign.utils import resolvers  # noqa: F401  (registers ${pid:} before composing)
from vlmalign.utils.files import fingerprint

TASK_NAME_DEFAULT = "${hydra:runtime.choices.objective}"  # conf/train.yaml's task_name
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")  # every Hydra entry point's config folder


def compose_train(overrides: Sequence[str] = ()) -> DictConfig:
    """The composed train config for ``overrides``, inside a running Hydra app or on its own."""
    context = nullcontext() if GlobalHydra.instance().is_initialized() else \
        initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3")
    with context:
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    # ${hydra:runtime.choices.objective} (task_name's default) reads the running app's HydraConfig, which inside
    # another command (an RLAIF-V round, a base build) is that command's: resolve it from this composition instead.
    with open_dict(cfg):
        if OmegaConf.to_container(cfg, resolve=False).get("task_name") == TASK_NAME_DEFAULT:
            cfg.task_name = cfg.hydra.runtime.choices.get("objective")
        del cfg["hydra"]
    return cfg


# Top-level keys that say where and how a run writes, not what it computes (resume/numerics only act
# on interrupted or broken runs; performance levers are tested to give the same losses and gradients; a
# merged LoRA export holds the same function as the adapter):
# left out of the SFT-base cache key and of a run's resume identity.
NOT_COMPUTED = ("paths", "logger", "callbacks", "task_name", "tags", "hydra", "resume", "numerics", "performance",
                "export")


def config_fingerprint(cfg: DictConfig, exclude: Sequence[str], version: int = 0) -> str:
    """Fingerprint of the unresolved config without the top-level keys in ``exclude`` (those that do
    not change what a run computes: where it writes, how it logs)."""
    identity = {k: v for k, v in OmegaConf.to_container(cfg, resolve=False).items() if k not in exclude}
    return fingerprint([identity, version])
