"""OmegaConf resolvers the configs use; registered on import, before Hydra composes anything."""

from __future__ import annotations

import os

from omegaconf import OmegaConf

# ${pid:} in run directory names: unique among live processes, so concurrent runs never share a folder.
OmegaConf.register_new_resolver("pid", lambda: os.getpid(), replace=True)
