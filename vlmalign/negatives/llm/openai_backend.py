"""An OpenAI-compatible ``/v1/chat/completions`` endpoint (OpenAI, vLLM, llama.cpp, TGI, ...), stdlib only."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

from vlmalign.negatives.llm.backends import BackendError

# Worth another try: rate limiting and server-side failures; other 4xx (bad key, bad model) are not.
RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}


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
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.base_url, self.model = base_url, model
        self.api_key_env = api_key_env
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.max_tokens, self.temperature = max_tokens, temperature

    @property
    def identity(self) -> dict[str, Any]:
        # The key is a credential, not part of what the model answers: it is never stored in the cache key.
        return {"backend": "openai-chat", "base_url": self.base_url, "model": self.model,
                "max_tokens": self.max_tokens, "temperature": self.temperature}

    def _request(self, prompt: str) -> urllib.request.Request:
        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}],
                "max_tokens": self.max_tokens, "temperature": self.temperature}
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")

    def complete(self, prompt: str) -> str:
        last_error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                with urllib.request.urlopen(self._request(prompt), timeout=self.timeout_s) as response:
                    payload = json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as error:
                detail = error.read().decode("utf-8", errors="replace")[:300]
                last_error = f"HTTP {error.code} from {self.url}: {detail}"
                if error.code not in RETRYABLE_STATUS:
                    break
                continue
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                last_error = f"cannot reach {self.url}: {getattr(error, 'reason', error)}"
                continue
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                last_error = f"{self.url} answered with something that is not JSON ({error})"
                continue
            try:
                content = payload["choices"][0]["message"]["content"]
            except (KeyError, IndexError, TypeError):
                last_error = f"{self.url} answered without choices[0].message.content: {str(payload)[:300]}"
                continue
            return content if isinstance(content, str) else ""
        raise BackendError(f"{last_error} (after {attempt + 1} attempt(s); completed samples are kept, rerun the "
                           "same command to resume)")
