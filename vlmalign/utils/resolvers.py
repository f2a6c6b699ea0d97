"""OmegaConf resolvers the configs use; registered on import, before Hydra composes anything."""

from __future__ import annotations

import os

from omegaconf import OmegaConf

from vlmalign.utils.secrets import safe_override_dirname

# ${pid:} in run directory names: unique among live processes, so concurrent runs never share a folder.
OmegaConf.register_new_resolver("pid", lambda: os.getpid(), replace=True)



def _run_overrides() -> str:
    """The run's overrides for its wandb / CSV name, read unresolved (``${hydra:job.override_dirname}`` resolves
    the interpolations inside: a ``${oc.env:API_KEY}`` override put the key into the run name)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return ""
    job = OmegaConf.to_container(HydraConfig.get().job, resolve=False)
    return safe_override_dirname(str(job.get("override_dirname") or ""))


# ${run_overrides:} names wandb runs (conf/logger/wandb.yaml).
OmegaConf.register_new_resolver("run_overrides", _run_overrides, replace=True)
