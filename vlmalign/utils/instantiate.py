"""The one instantiate path (docs/design.md, rule 4): Hydra ``_target_`` configs → objects, clear errors.

A mistake in a config (wrong key, bad value, missing ``???``) surfaces as a ConfigError naming the
config key, not as a traceback from inside the library being built.
"""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from vlmalign.errors import ConfigError, VlmalignError


def build(node: DictConfig | None, key: str, **kwargs: Any) -> Any:
    """Instantiate config ``node`` found at ``key`` (for messages), passing runtime ``kwargs``."""
    if node is None:
        return None
    missing = sorted(OmegaConf.missing_keys(node))
    if missing:
        names = [f"{key}.{m}" for m in missing]
        raise ConfigError(f"{key}: required values are missing (set them with overrides): {names}")
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        if isinstance(cause, VlmalignError):
            raise cause from None
        target = node.get("_target_", "?") if isinstance(node, DictConfig) else "?"
        raise ConfigError(f"could not build `{key}` (_target_: {target}): {cause or error}") from error
    except (MissingMandatoryValue, OmegaConfBaseException) as error:
        raise ConfigError(f"{key}: {error}") from error
