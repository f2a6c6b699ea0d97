"""An OpenAI-compatible ``/v1/chat/completions`` endpoint (OpenAI, vLLM, llama.cpp, TGI, ...), stdlib only.

The API key comes only from the environment variable named by ``api_key_env`` and is read per
request, never kept on the object: it is not part of ``identity`` (the completion cache key, the
cache entries, the negatives' ``.meta.json``) and is masked out of every error message, so it can
reach neither the disk nor a log. Credentials in ``base_url`` (``user:pass@`` or ``?api_key=``) are
masked the same way in the identity and in messages.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from vlmalign.errors import ConfigError
from vlmalign.llm.backends import BackendError
from vlmalign.utils.secrets import MASK, is_secret_key

log = logging.getLogger(__name__)

# Worth another try: rate limiting and server-side failures; other 4xx (bad key, bad model) are not.
RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def public_url(url: str) -> str:
    """``url`` with credentials masked: the password of ``user:pass@`` and secret-named query values.

    A URL without credentials is returned unchanged (so cache keys of existing caches stay valid).
    """
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if parts.password is None and not any(is_secret_key(name) for name, _ in query):
        return url
    netloc = parts.hostname or ""
    if ":" in netloc:  # IPv6 literal
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    if parts.username is not None:
        netloc = f"{parts.username}:{MASK}@{netloc}" if parts.password is not None else f"{parts.username}@{netloc}"
    masked = [(name, MASK if is_secret_key(name) else value) for name, value in query]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, urllib.parse.urlencode(masked, safe="*"),
                                    parts.fragment))


class OpenAICompatibleBackend:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout_s: float = 120.0,
        retries: int = 3,
        backoff_s: float = 2.0,
        max_tokens: int = 1024,
        temperature: float = 0.0,
    ) -> None:
        if api_key_env and not ENV_NAME.match(api_key_env):
            # Never echo the value: the usual mistake is passing the key itself here.
            raise ConfigError("api_key_env (--api-key-env) must be the *name* of an environment variable holding "
                              "the API key, e.g. OPENAI_API_KEY, not the key itself; export the key in that "
                              "variable")
        base = urllib.parse.urlsplit(base_url)
        path = base.path.rstrip("/") + "/chat/completions"
        self.url = urllib.parse.urlunsplit((base.scheme, base.netloc, path, base.query, base.fragment))
        self.base_url, self.model = public_url(base_url), model
        self.shown_url = public_url(self.url)  # the URL as messages show it
        self.api_key_env = api_key_env or None
        self._plain_http_warned = False
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.max_tokens, self.temperature = max_tokens, temperature

    @property
    def identity(self) -> dict[str, Any]:
        # The key is a credential, not part of what the model answers: it is never stored in the cache key
        # (nor in the cache entries and .meta.json, which store this identity).
        return {"backend": "openai-chat", "base_url": self.base_url, "model": self.model,
                "max_tokens": self.max_tokens, "temperature": self.temperature}

    def _api_key(self) -> str | None:
        """The key, read from the environment at each request; no key (local servers) is allowed."""
        return (os.environ.get(self.api_key_env) or None) if self.api_key_env else None

    def _secrets(self) -> list[str]:
        """What must never appear in a message: the key and the credentials of the URL."""
        parts = urllib.parse.urlsplit(self.url)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        found = [self._api_key(), parts.password, *(value for name, value in query if is_secret_key(name))]
        return sorted({s for s in found if s}, key=len, reverse=True)

    def _scrub(self, text: str) -> str:
        text = text.replace(self.url, self.shown_url)
        for secret in self._secrets():
            text = text.replace(secret, MASK)
        return text

    def _request(self, prompt: str) -> urllib.request.Request:
        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}],
                "max_tokens": self.max_tokens, "temperature": self.temperature}
        headers = {"Content-Type": "application/json"}
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
            target = urllib.parse.urlsplit(self.url)
            if target.scheme == "http" and target.hostname not in LOCAL_HOSTS and not self._plain_http_warned:
                self._plain_http_warned = True
                log.warning("sending the API key from $%s over unencrypted http to %s; use https unless the "
                            "network is trusted", self.api_key_env, target.hostname)
        return urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")

    def _auth_hint(self, status: int) -> str:
        if status not in (401, 403):
            return ""
        if not self.api_key_env:
            return " (no API key was sent: pass --api-key-env NAME with the key exported in $NAME)"
        if self._api_key() is None:
            return f" (no API key was sent: ${self.api_key_env} is not set)"
        return f" (check the key in ${self.api_key_env})"

    def complete(self, prompt: str) -> str:
        # Every message may quote the URL and the server's answer (which can echo the key): scrub them. It is
        # raised outside the except block, so no __context__ keeps the unscrubbed original for a traceback.
        try:
            return self._complete(prompt)
        except BackendError as error:
            message = self._scrub(str(error))
        raise BackendError(message)

    def _complete(self, prompt: str) -> str:
        last_error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                with urllib.request.urlopen(self._request(prompt), timeout=self.timeout_s) as response:
                    payload = json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as error:
                detail = error.read().decode("utf-8", errors="replace")[:300]
                last_error = f"HTTP {error.code} from {self.url}{self._auth_hint(error.code)}: {detail}"
                if error.code not in RETRYABLE_STATUS:
                    break
                continue
            except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as error:
                last_error = f"cannot reach {self.url}: {getattr(error, 'reason', error)}"
                continue
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                last_error = f"{self.url} answered with something that is not JSON ({error})"
                continue
            except ValueError as error:  # http.client.InvalidURL, unknown url type: no retry helps
                last_error = f"base_url {self.url} is not a usable http(s) URL ({error})"
                break
            try:
                content = payload["choices"][0]["message"]["content"]
            except (KeyError, IndexError, TypeError):
                last_error = f"{self.url} answered without choices[0].message.content: {str(payload)[:300]}"
                continue
            return content if isinstance(content, str) else ""
        raise BackendError(f"{last_error} (after {attempt + 1} attempt(s); completed samples are kept, rerun the "
                           "same command to resume)")
