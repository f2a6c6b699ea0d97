"""A reward model: the VLM backbone with a scalar head on the last response token (Ouyang et al. 2022, §3.5: the
SFT model with its unembedding replaced by a projection to one scalar), saved in HF format with its head beside it.

The score of a sequence is the head applied to the hidden state at its *last labelled position*: the response's
last token (its EOS, as the data encodes responses), the first state that has read the whole response. The
backbone stays any ``VisionLanguageBackbone``, so a reward model loads, shards and LoRA-adapts like a policy.

On disk (``save_reward_model``): the backbone's own ``save_pretrained`` export (plain ``transformers`` loads it)
plus ``reward_head.safetensors`` (the head's weight and bias) and ``reward_model.json`` (its family, hidden size
and tokenizer digest, read before the weights to refuse a reward model that cannot score a given policy).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from vlmalign.errors import ConfigError
from vlmalign.models.backbone import VisionLanguageBackbone
from vlmalign.models.loader import load_backbone
from vlmalign.models.logprobs import IGNORE_INDEX
from vlmalign.models.weights import tokenizer_digest

HEAD_FILE = "reward_head.safetensors"
META_FILE = "reward_model.json"


def last_labelled_positions(labels: Tensor) -> Tensor:
    """(B,) index of the last position whose label is not ``IGNORE_INDEX`` in each row of (B, T) labels."""
    labelled = labels != IGNORE_INDEX
    if not bool(labelled.any(1).all()):
        raise ValueError("a row has no labelled (response) token: there is no response to score")
    positions = torch.arange(labels.shape[1], device=labels.device).expand_as(labels)
    return torch.where(labelled, positions, -1).amax(1)


class RewardModel(nn.Module):
    """``backbone`` + ``head`` (hidden → 1). A new head starts at zero bias and small weights (std 1/√(H+1), as
    TRL's value and reward heads), so every response starts near the same score."""

    def __init__(self, backbone: VisionLanguageBackbone, head: nn.Linear | None = None, seed: int = 0) -> None:
        super().__init__()
        self.backbone = backbone
        if head is None:
            hidden = backbone.hidden_size
            head = nn.Linear(hidden, 1)
            generator = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                head.weight.copy_(torch.randn(head.weight.shape, generator=generator) / (hidden + 1) ** 0.5)
                head.bias.zero_()
        self.head = head

    @property
    def processor(self):
        return self.backbone.processor

    def scores(self, batch: dict, views: tuple[str, ...]) -> dict[str, Tensor]:
        """r(x, y) of every view of a collated batch, (B,) each, from one forward; each image encoded once."""
        features = self.backbone.image_features(batch)
        parts = [batch["views"][v] for v in views]
        rows = {key: torch.cat([p[key] for p in parts]) for key in ("input_ids", "attention_mask", "labels")}
        image_index = torch.cat([p["image_index"] for p in parts]).tolist()
        hidden = self.backbone.hidden_states(**rows, image_features=[features[i] for i in image_index])  # (B, T, H)
        last = last_labelled_positions(rows["labels"])
        rows_at_last = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # (B, H)
        rewards = self.head(rows_at_last.to(self.head.weight.dtype))
        out, start = {}, 0
        for view, part in zip(views, parts):
            count = part["input_ids"].shape[0]
            out[view] = rewards[start : start + count, 0]
            start += count
        return out

    def identity(self) -> dict:
        """What a policy must share with this reward model for it to score the policy's token ids."""
        return {"model_type": self.backbone.model_type, "hidden_size": self.backbone.hidden_size,
                "tokenizer": tokenizer_digest(self.backbone.processor.tokenizer)}


def save_reward_model(model: RewardModel, directory: str | Path) -> None:
    """The backbone in HF format plus the head and its identity (module docstring)."""
    directory = Path(directory)
    model.backbone.save_pretrained(directory, merge_lora=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()}, directory / HEAD_FILE)
    (directory / META_FILE).write_text(json.dumps(model.identity(), indent=2, sort_keys=True) + "\n")


def reward_model_identity(path: str | Path) -> dict:
    """The saved identity of the reward model at ``path`` (no weights read); a ConfigError if it is not one."""
    meta = Path(path).expanduser() / META_FILE
    if not meta.is_file():
        raise ConfigError(f"reward model path {str(path)!r} has no {META_FILE}: it is not a reward model saved by "
                          "vlmalign (train one with objective=reward_model; its run writes model/)")
    return json.loads(meta.read_text())


def load_reward_model(path: str | Path, dtype: str = "float32") -> RewardModel:
    """A saved reward model, backbone and head, by path (frozen: it scores, it does not train)."""
    identity = reward_model_identity(path)
    backbone = load_backbone(str(Path(path).expanduser()), dtype=dtype)
    head = nn.Linear(identity["hidden_size"], 1)
    head.load_state_dict(load_file(str(Path(path).expanduser() / HEAD_FILE)))
    model = RewardModel(backbone, head).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def reward_model_problems(identity: dict, policy: VisionLanguageBackbone) -> list[str]:
    """Why a reward model of ``identity`` cannot score ``policy``'s rollouts (empty when it can): its family and
    tokenizer must be the policy's, since it reads the policy's token ids and image placeholders as they are."""
    problems = []
    if identity.get("model_type") != policy.model_type:
        problems.append(f"the reward model is a {identity.get('model_type')!r} model but the policy is a "
                        f"{policy.model_type!r} model: a reward model must be of the policy's family")
    if identity.get("tokenizer") != tokenizer_digest(policy.processor.tokenizer):
        problems.append("the reward model's tokenizer is not the policy's (vocabulary or chat template differ): it "
                        "would read the policy's token ids as other text; train the reward model from the policy's "
                        "base")
    return problems
