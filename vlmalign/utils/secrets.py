"""Keep credentials out of everything a run writes: saved configs, logs, logger hyperparameters.

Secrets (API keys, hub tokens, passwords) reach a run only through environment variables, e.g.
``${oc.env:OPENAI_API_KEY}`` in a config or ``--api-key-env`` on the command line. Hydra saves the
*unresolved* config to ``<run dir>/.hydra/config.yaml``, so such an interpolation is harmless there,
while a key written literally into a config or an override would be copied into every run directory,
log and wandb project. Three guards:

- ``check_no_literal_secrets(cfg)`` refuses a config holding a literal secret (``NoLiteralSecrets``
  does the same as a Hydra callback, before Hydra writes anything into the run directory);
- ``redact_secrets(obj)`` masks secret-named values in what goes to wandb / tensorboard / csv
  hyperparameters (the config is logged *resolved*, so ``${oc.env:...}`` would otherwise be expanded);
- ``RedactSecretsFilter`` masks the current values of secret environment variables in log records.

A key is secret-named when its whole name, or its last ``_``/``-`` separated part(s), is one of the
names below (case-insensitive). Matching on suffixes, not substrings, keeps the harmless names of
this repo and of Hugging Face configs out: ``max_new_tokens``, ``pad_token_id``, ``image_token``,
``tokenizer``, ``api_key_env`` (the *name* of the variable holding the key) are not secrets. A bare
``*_token`` is only secret with a credential qualifier (``hf_token``, ``access_token``, ...), since
tokenizers name their special tokens ``bos_token``, ``image_token`` and so on.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from vlmalign.errors import ConfigError

MASK = "***"

_TOKEN_QUALIFIERS = ("hf", "hub", "huggingface", "access", "auth", "api", "bearer", "refresh", "session", "secret",
                     "wandb", "github", "gh", "gitlab", "openai", "bot")
SECRET_KEY_PATTERN = re.compile(
    r"^(?:"
    r"token|authorization"  # only as the whole key
    r"|(?:.*[_-])?(?:"      # the whole key or its last part(s)
    r"api[_-]?key|secret(?:[_-]?key)?|password|passwd|passphrase|access[_-]?key|private[_-]?key"
    rf"|(?:{'|'.join(_TOKEN_QUALIFIERS)})[_-]?token"
    r"))$",
    re.IGNORECASE,
)
# Environment variable names are never tokenizer fields, so there any ``*_TOKEN`` counts (CI_JOB_TOKEN, ...).
_ENV_TOKEN = re.compile(r"^[A-Z0-9_]*_TOKEN$", re.IGNORECASE)
# Shorter values are no real credential, and masking them ("1", "true") would garble every log line.
MIN_MASKED_LENGTH = 8
_OVERRIDE = re.compile(r"^([+~]{0,2}[\w.\-/@]+)=(.*)$", re.DOTALL)
_OC_ENV_DEFAULT = re.compile(r"^\$\{oc\.env:[^,}]*,(.*)\}$", re.DOTALL)
# Credentials inside a URL, whatever the key holding the URL is called: the password of ``user:pass@`` and query
# parameters that carry keys (``?key=`` is Google's, ``?sig=`` Azure's SAS signature, plus every secret name).
_URL_SECRET_PARAMS = ("key", "sig", "signature", "token", "auth", "apikey", "api-key")
_URL_QUERY = re.compile(r"([?&;]([\w.\-]+)=)([^&#;\s'\"\],}]+)")
_URL_PASSWORD = re.compile(r"(://[^/\s:@]+:)([^@/\s]+)(@)")


def is_secret_key(name: Any) -> bool:
    """Whether a config key / dict key / header name names a credential."""
    return isinstance(name, str) and SECRET_KEY_PATTERN.match(name) is not None


def _is_secret_override(text: str) -> bool:
    """``model.api_key=sk-...``: a Hydra override string (as in ``hydra.overrides.task``) setting a secret."""
    match = _OVERRIDE.match(text)
    return match is not None and is_secret_key(re.split(r"[./]", match.group(1))[-1].lstrip("+~"))


def _is_url_secret_param(name: str) -> bool:
    return name.lower() in _URL_SECRET_PARAMS or is_secret_key(name)


def mask_url_credentials(text: str) -> str:
    """``text`` with the values of secret query parameters and URL passwords masked (the rest unchanged)."""
    text = _URL_QUERY.sub(lambda m: m.group(1) + MASK if _is_url_secret_param(m.group(2)) else m.group(0), text)
    return _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(3), text)


def _has_literal_url_credential(text: str) -> bool:
    """A URL in ``text`` carries a credential written out (not an interpolation such as ``?key=${oc.env:K}``)."""
    if any(_is_url_secret_param(m.group(2)) and "${" not in m.group(3) and m.group(3) != MASK
           for m in _URL_QUERY.finditer(text)):
        return True
    return any("${" not in m.group(2) and m.group(2) != MASK for m in _URL_PASSWORD.finditer(text))


def _unset(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value == "")


def redact_secrets(obj: Any) -> Any:
    """A copy of a nested dict / list / tuple container with the values of secret-named keys set to ``"***"``.

    ``None`` and empty values stay as they are (nothing to hide; "not set" remains visible). Override
    strings such as ``"model.api_key=sk-..."`` in lists become ``"model.api_key=***"``. An OmegaConf
    container is resolved first (loggers record the values a run actually used), then redacted.
    """
    if isinstance(obj, (DictConfig, ListConfig)):
        obj = OmegaConf.to_container(obj, resolve=True)
    if isinstance(obj, Mapping):
        return {k: MASK if is_secret_key(k) and not _unset(v) else redact_secrets(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_secrets(v) for v in obj)
    if isinstance(obj, str) and _is_secret_override(obj):
        return obj.partition("=")[0] + "=" + MASK
    if isinstance(obj, str):  # an endpoint URL with ``?key=`` under a harmless name
        return mask_url_credentials(obj)
    return obj


def safe_override_dirname(dirname: str) -> str:
    """Hydra's ``job.override_dirname`` (``a=1,b=2``, unresolved) fit to name a run in wandb and the CSV logs:
    secret-named values and URL credentials masked, interpolations shown as ``$name`` instead of being resolved.
    Resolving ``${hydra:job.override_dirname}`` expanded ``+notes.api_key=${oc.env:KEY}`` into the key itself."""
    items = [redact_secrets(item) if _OVERRIDE.match(item) else item for item in dirname.split(",")]
    text = mask_url_credentials(",".join(items))
    text = re.sub(r"\$\{oc\.env:([^,}]+)[^}]*\}", r"$\1", text)
    return text.replace("${", "$").replace("}", "")


def _is_literal_secret(value: Any) -> bool:
    """A non-empty string saved as is. A value with an interpolation in it is not, unless it is an
    ``oc.env`` lookup whose default is itself a literal (``${oc.env:NAME,sk-...}``)."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    if text in ("", "???"):  # empty or MISSING: nothing is written
        return False
    if "${" not in text:
        return True
    default = _OC_ENV_DEFAULT.match(text)
    if default is None:
        return False
    fallback = default.group(1).strip()
    return fallback not in ("", "null", "''", '""') and "${" not in fallback


def _walk(node: Any, path: str) -> Iterable[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            dotted = f"{path}.{key}" if path else str(key)
            if is_secret_key(key) and _is_literal_secret(value):
                yield dotted
            elif isinstance(value, str) and _has_literal_url_credential(value):
                yield f"{dotted} (a credential in a URL)"
            else:
                yield from _walk(value, dotted)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            if isinstance(value, str) and _is_secret_override(value) and _is_literal_secret(value.partition("=")[2]):
                yield f"{path}[{index}] ({value.partition('=')[0]}=...)"
            elif isinstance(value, str) and _has_literal_url_credential(value):
                yield f"{path}[{index}] ({value.partition('=')[0]}=..., a credential in a URL)"
            else:
                yield from _walk(value, f"{path}[{index}]")


def literal_secrets(cfg: DictConfig | Mapping) -> list[str]:
    """Dotted keys whose secret-named value is a literal non-empty string in the *unresolved* config.

    ``${oc.env:OPENAI_API_KEY}`` is fine (Hydra saves the interpolation, not the key); ``sk-...`` is
    not, and neither is an ``oc.env`` default holding a key. A value with an interpolation inside
    (``Bearer ${oc.env:TOKEN}``) counts as safe. Hydra override strings (``hydra.overrides.task``)
    that set a secret literally are reported by their list position and key.
    """
    container = OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, (DictConfig, ListConfig)) else cfg
    return list(_walk(container, ""))


def check_no_literal_secrets(cfg: DictConfig | Mapping) -> None:
    """Raise ``ConfigError`` naming every config key that holds a literal secret (never its value)."""
    found = literal_secrets(cfg)
    if found:
        raise ConfigError(
            f"the config holds a literal secret in {', '.join(found)}. Pass secrets through an environment "
            "variable instead, e.g. key='${oc.env:NAME}' with NAME exported in the shell, so the secret is "
            "never written into the run directory's saved config (.hydra/config.yaml), its logs or wandb."
        )


@functools.lru_cache(maxsize=4096)
def _is_secret_env_name(name: str) -> bool:
    return is_secret_key(name) or _ENV_TOKEN.match(name) is not None


def _secret_env_values() -> list[str]:
    values = {value for name, value in os.environ.items()
              if len(value) >= MIN_MASKED_LENGTH and _is_secret_env_name(name)}
    return sorted(values, key=len, reverse=True)  # a key containing another is masked whole


def mask_secret_values(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with every occurrence of the given secrets (default: secret env vars' values) masked."""
    for secret in _secret_env_values() if secrets is None else secrets:
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactSecretsFilter(logging.Filter):
    """Masks the values of secret environment variables (OPENAI_API_KEY, HF_TOKEN, WANDB_API_KEY, ...) in records.

    Why: a key reaches a run only through the environment, and no code of ours logs it, but third-party
    code can (an HTTP library echoing a request, an exception carrying a URL with ``?api_key=``, a
    traceback of locals). This is the last line of defence for whatever a handler writes to the console
    or the run's log file. It masks the message as rendered (``msg % args``) and a formatted exception;
    values are read from the environment at each record, so keys exported later are covered too.
    Attach it to *handlers* (a logger's filters do not see records propagated from child loggers),
    e.g. with ``install_log_redaction()`` or Hydra's ``job_logging.filters``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = _secret_env_values()
        message = record.getMessage()
        masked = mask_url_credentials(mask_secret_values(message, secrets))
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secret_values(record.exc_text, secrets)
        return True


def install_log_redaction(loggers: Iterable[logging.Logger] | None = None) -> RedactSecretsFilter:
    """Add one ``RedactSecretsFilter`` to every handler of the given loggers (default: root and all named ones)."""
    redact = RedactSecretsFilter()
    if loggers is None:
        named = [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
        loggers = [logging.getLogger(), *named]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactSecretsFilter) for f in handler.filters):
                handler.addFilter(redact)
    return redact


try:  # a Hydra callback: Hydra calls on_run_start / on_multirun_start before it saves anything
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # pragma: no cover - hydra is a dependency; keep the module importable without it
    _HydraCallback = object


class NoLiteralSecrets(_HydraCallback):
    """Stops a run whose config holds a literal secret before Hydra writes ``.hydra/*.yaml``.

    Enable with ``hydra.callbacks.no_literal_secrets._target_=vlmalign.utils.secrets.NoLiteralSecrets``.
    Hydra turns exceptions raised by callbacks into warnings, so this exits (status 2) instead.
    """

    def _check(self, config: DictConfig) -> None:
        try:
            check_no_literal_secrets(config)
        except ConfigError as error:
            print(f"vlmalign: error: {error}", file=sys.stderr)
            sys.exit(2)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)
