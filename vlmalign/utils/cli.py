"""How every Hydra command starts and ends: secrets masked in its logs, and a user mistake ends as one line on
stderr with exit status 2, never a library traceback (lightning-hydra-template's ``task_wrapper`` plays this part)."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from vlmalign.errors import VlmalignError
from vlmalign.utils.secrets import install_log_redaction

Result = TypeVar("Result")


def exit_on_user_error(program: str, error: VlmalignError) -> NoReturn:
    """Called in ``except VlmalignError``. ``HYDRA_FULL_ERROR=1`` re-raises (the full traceback); so does a sweep
    member, so Hydra records the failure (``status.json``) and runs the other members."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise error
    print(f"{program}: error: {error}\n(set HYDRA_FULL_ERROR=1 for the full traceback)", file=sys.stderr)
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise error
    exit_recorded(2, "failed", f"{type(error).__name__}: {error}")


def cli_task(program: str) -> Callable[[Callable[..., Result]], Callable[..., Result]]:
    """Decorate a Hydra entry point's function (under ``@hydra.main``): log redaction is installed first, and a
    ``VlmalignError`` it raises ends through ``exit_on_user_error(program, ...)``."""

    def decorate(task: Callable[..., Result]) -> Callable[..., Result]:
        @functools.wraps(task)
        def run(*args, **kwargs) -> Result:
            install_log_redaction()
            try:
                return task(*args, **kwargs)
            except VlmalignError as error:
                exit_on_user_error(program, error)

        return run

    return decorate


_EXIT_HOOKS: list[Callable[[int, str, str], None]] = []


def on_recorded_exit(hook: Callable[[int, str, str], None]) -> None:
    """Call ``hook(code, status, error)`` before ``exit_recorded`` exits (the run-status callback registers one:
    ``vlmalign/report/callback.py``; registered from above, so this module imports nothing of the layers above)."""
    if hook not in _EXIT_HOOKS:
        _EXIT_HOOKS.append(hook)


def exit_recorded(code: int, status: str, error: str) -> NoReturn:
    """Exit with ``code`` after the hooks recorded how the run ended (``status.json``): a ``sys.exit`` inside the task
    skips Hydra's job-end callback (it catches exceptions, not SystemExit), which left "running" there."""
    for hook in _EXIT_HOOKS:
        hook(code, status, error)
    sys.exit(code)
