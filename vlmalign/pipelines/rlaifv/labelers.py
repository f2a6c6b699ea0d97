"""Conquer: a labeler answers each claim's yes/no question; the accept rule turns its answer into a verdict.

RLAIF-V (arXiv 2405.17220, §2.2): a claim is accepted iff the labeler's next-token probabilities give
P(yes) + P(Yes) > P(no) + P(No). Labelers:

- ``ModelLabeler``: any VLM backbone (the shapes labeler trained by ``experiment=labeler_shapes``, or a
  real HF checkpoint through ``vlmalign.models.load_backbone``);
- ``OracleLabeler``: the scene's ground truth (shapes only), the upper bound of what labeling can give.

A labeler returns (P(yes-words), P(no-words)) per question; ``accepts`` applies the rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from vlmalign.data.encoding import SequenceEncoder
from vlmalign.data.shapes import Scene
from vlmalign.data.shapes.claims import Claim, claim_holds
from vlmalign.errors import ConfigError
from vlmalign.models.backbone import VisionLanguageBackbone
from vlmalign.models.generation import encode_prompt_batch

YES_WORDS, NO_WORDS = ("yes", "Yes"), ("no", "No")


@dataclass(frozen=True)
class Question:
    """One claim to verify, with the image (and, on the shapes world, the scene) it is about."""

    image: Image.Image
    claim: Claim
    scene: Scene | None = None


def accepts(p_yes: float, p_no: float) -> bool:
    """RLAIF-V's rule: the claim stands iff P(yes) + P(Yes) > P(no) + P(No) (ties reject it)."""
    return p_yes > p_no


def answer_token_ids(tokenizer, words: Sequence[str]) -> list[int]:
    """Vocabulary ids of ``words`` as a reply's first token, bare and with a leading space (BPE tokenizers
    spell a word after "ASSISTANT:" with one); words the tokenizer cannot spell in one token are left out."""
    unknown = tokenizer.unk_token_id
    ids = set()
    for word in words:
        for spelling in (word, f" {word}"):
            pieces = tokenizer(spelling, add_special_tokens=False)["input_ids"]
            if len(pieces) == 1 and pieces[0] != unknown:
                ids.add(pieces[0])
    return sorted(ids)


class ModelLabeler:
    """A VLM answers "is there ... ?": the probability mass of its reply token on yes- and no-words.

    ``think_first``: the labeler first says what it sees (greedy, up to ``max_rationale_tokens``) and the
    verdict is read at its last yes/no token (the shapes labeler answers "at the top left there is a large
    red square . no", see ``vlmalign.data.shapes_claims``); a reply without a yes/no word counts as
    P(yes) = P(no) = 0, rejected by the rule. Without it, the first reply token is the verdict.
    """

    def __init__(self, backbone: VisionLanguageBackbone, batch_size: int = 64, think_first: bool = False,
                 max_rationale_tokens: int = 48) -> None:
        self.backbone, self.batch_size = backbone, batch_size
        self.think_first, self.max_rationale_tokens = think_first, max_rationale_tokens
        tokenizer = backbone.processor.tokenizer
        self.yes_ids, self.no_ids = answer_token_ids(tokenizer, YES_WORDS), answer_token_ids(tokenizer, NO_WORDS)
        if not self.yes_ids or not self.no_ids:
            raise ConfigError(f"labeler {backbone.name!r}: its tokenizer spells none of {YES_WORDS} or {NO_WORDS} "
                              "as one token, so the accept rule P(yes)+P(Yes) > P(no)+P(No) cannot be read")

    @torch.no_grad()
    def probabilities(self, questions: Sequence[Question]) -> list[tuple[float, float]]:
        encoder = SequenceEncoder(self.backbone.processor, max_length=10**6)
        core = self.backbone.core
        device, dtype = next(core.parameters()).device, next(core.parameters()).dtype
        was_training = self.backbone.training
        self.backbone.eval()
        out: list[tuple[float, float]] = []
        try:
            for start in range(0, len(questions), self.batch_size):
                chunk = questions[start : start + self.batch_size]
                inputs = encode_prompt_batch(encoder, [q.image for q in chunk], [q.claim.question for q in chunk],
                                             "left", device, dtype)
                yes, no = self._verdicts(inputs)
                out.extend(zip(yes.tolist(), no.tolist()))
        finally:
            self.backbone.train(was_training)
        return out


    def _verdicts(self, inputs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(P(yes words), P(no words)) per row: at the first reply token, or with ``think_first`` at the last
        yes/no word of the greedy reply (0, 0 when it has none). Both go through the backbone's ``generate``,
        which gives each model family the extra inputs its forward needs."""
        tokenizer = self.backbone.processor.tokenizer
        out = self.backbone.generate(
            inputs.pop("input_ids"), inputs.pop("attention_mask"), inputs.pop("pixel_values"), **inputs,
            max_new_tokens=self.max_rationale_tokens if self.think_first else 1, do_sample=False, output_logits=True,
            return_dict_in_generate=True, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        tokens = out.sequences
        probs = torch.stack(out.logits, dim=1).float().softmax(-1)  # (B, steps, vocab)
        rows = torch.arange(tokens.shape[0], device=tokens.device)
        if self.think_first:
            answer_ids = torch.tensor([*self.yes_ids, *self.no_ids], device=tokens.device)
            steps = torch.arange(tokens.shape[1], device=tokens.device)
            last = torch.where(torch.isin(tokens, answer_ids), steps, -1).max(dim=1).values  # the last yes/no word
        else:
            last = torch.zeros_like(rows)
        at = probs[rows, last.clamp(min=0)]
        answered = (last >= 0).float()
        return at[:, self.yes_ids].sum(-1) * answered, at[:, self.no_ids].sum(-1) * answered


def shapes_model_labeler(base: str, cache_dir: str, batch_size: int = 64, think_first: bool = True,
                         max_rationale_tokens: int = 48) -> ModelLabeler:
    """The shapes labeler VLM: ``conf/base/<base>.yaml`` trained once (``experiment=labeler_shapes``), cached."""
    from vlmalign.models.loader import load_backbone
    from vlmalign.pipelines.base_model import ensure_base_model
    from vlmalign.utils.compose import compose_train

    directory = ensure_base_model(compose_train([f"base={base}"]).base, cache_dir) / "model"
    return ModelLabeler(load_backbone(str(directory)), batch_size, think_first, max_rationale_tokens)


def hf_labeler(name_or_path: str, cache_dir: str | None = None, dtype: str = "bfloat16", batch_size: int = 16,
               think_first: bool = False, max_rationale_tokens: int = 64,
               trust_remote_code: bool = False) -> ModelLabeler:
    """Any HF image-text-to-text checkpoint as the labeler (RLAIF-V uses an open VLM, e.g. LLaVA-NeXT 34B)."""
    from vlmalign.models.loader import load_backbone

    backbone = load_backbone(name_or_path, dtype=dtype, trust_remote_code=trust_remote_code)
    return ModelLabeler(backbone, batch_size, think_first, max_rationale_tokens)


class OracleLabeler:
    """Exact verdicts from the scene: (1, 0) for a true claim, (0, 1) for a false one."""

    def __init__(self, cache_dir: str | None = None) -> None:  # cache_dir: the labelers' common build signature
        pass

    def probabilities(self, questions: Sequence[Question]) -> list[tuple[float, float]]:
        verdicts = []
        for q in questions:
            if q.scene is None or q.claim.fact is None:
                raise ConfigError("labeler=oracle needs structured claims about shapes scenes (splitter=shapes)")
            verdicts.append((1.0, 0.0) if claim_holds(q.claim.fact, q.scene) else (0.0, 1.0))
        return verdicts
