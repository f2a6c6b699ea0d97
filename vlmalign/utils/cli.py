"""How every Hydra command ends on a user mistake: one line on stderr, exit status 2, no library traceback."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from vlmalign.errors import VlmalignError


def exit_on_user_error(program: str, error: VlmalignError) -> NoReturn:
    """Called in ``except VlmalignError``. ``HYDRA_FULL_ERROR=1`` re-raises (the full traceback); so does a sweep
    member, so Hydra records the failure (``status.json``) and runs the other members."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise error
    print(f"{program}: error: {error}\n(set HYDRA_FULL_ERROR=1 for the full traceback)", file=sys.stderr)
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise error
    sys.exit(2)
