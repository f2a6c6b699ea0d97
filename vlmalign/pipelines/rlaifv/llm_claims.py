"""Divide free text with an LLM: RLAIF-V's claim extraction and question rewriting (arXiv 2405.17220, §2.2).

One prompt per response goes to any completion backend of the nSFT builder (an HF causal LM or an
OpenAI-compatible endpoint, ``vlmalign.negatives.llm``), cached on disk so a rerun costs no calls. The
reply must be a JSON list of {"claim", "question"} objects; a reply that is not is rejected for that
response (counted in ``rejected``, never silently: the response then has no claims and takes no part
in pairing).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from vlmalign.data.shapes.claims import Claim
from vlmalign.llm.backends import CompletionBackend
from vlmalign.llm.cache import CompletionCache
from vlmalign.llm.parse import MAX_FIELD_CHARS, RejectedSample, load_json_list

log = logging.getLogger(__name__)

PROMPT = """You split an image description into atomic claims and turn each claim into a yes/no question.
An atomic claim states one visual fact (an object exists, one of its attributes, a count, a relation).
Skip opinions and statements that cannot be checked by looking at the image.
Answer with a JSON list only: [{{"claim": "...", "question": "...?"}}, ...]

Description:
{response}"""


def parse_claims(text: str) -> list[Claim]:
    """Claims from the LLM's reply; raises ``RejectedSample`` naming the first problem."""
    items = load_json_list(text)
    if not isinstance(items, list):
        raise RejectedSample("not_a_list", f"expected a JSON list, got {type(items).__name__}", raw=text)
    claims = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not {"claim", "question"} <= set(item):
            raise RejectedSample("bad_item", f"item {index} is not an object with 'claim' and 'question'", raw=text)
        claim, question = str(item["claim"]).strip(), str(item["question"]).strip()
        if not claim or not question:
            raise RejectedSample("empty_field", f"item {index} has an empty claim or question", raw=text)
        if len(claim) > MAX_FIELD_CHARS or len(question) > MAX_FIELD_CHARS:
            raise RejectedSample("too_long", f"item {index} is longer than {MAX_FIELD_CHARS} characters", raw=text)
        claims.append(Claim(claim, question if question.endswith("?") else question + "?"))
    return claims


class LLMClaimSplitter:
    def __init__(self, backend: CompletionBackend, cache_dir: str | Path | None = None) -> None:
        self.backend = backend
        self.cache = CompletionCache(cache_dir) if cache_dir is not None else None
        self.rejected: Counter[str] = Counter()

    def completion(self, prompt: str) -> str:
        return self.backend.complete(prompt) if self.cache is None else self.cache.complete(self.backend, prompt)[0]

    def split(self, response: str) -> list[Claim]:
        if not response.strip():
            return []
        try:
            return parse_claims(self.completion(PROMPT.format(response=response)))
        except RejectedSample as rejected:
            self.rejected[rejected.reason] += 1
            log.warning("claim splitter: the LLM's reply was rejected (%s: %s); the response gets no claims",
                        rejected.reason, rejected)
            return []
