"""The reward model (objective=reward_model): it learns a separable toy, saves and loads back by path, is refused
for a policy of another tokenizer or family, and reward-label noise flips an exact fraction of the pairs."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from PIL import Image

from vlmalign.data.collate import MultiViewCollator
from vlmalign.data.encoding import SequenceEncoder
from vlmalign.data.label_noise import FlippedPairs, flipped_indices
from vlmalign.errors import ConfigError
from vlmalign.models import load_backbone
from vlmalign.models.reward_model import (
    RewardModel,
    load_reward_model,
    reward_model_identity,
    reward_model_problems,
    save_reward_model,
)
from vlmalign.objectives import BradleyTerryTerm, DPOTerm, Objective
from vlmalign.rl.reward_module import RewardModelModule

COLORS = ("red", "blue")


def _pairs(processor, count: int, offset: int = 0):
    """The chosen caption names the image's colour, the rejected one the other colour: only the image decides."""
    encoder = SequenceEncoder(processor, max_length=64)
    examples = []
    for i in range(offset, offset + count):
        color, other = COLORS[i % 2], COLORS[1 - i % 2]
        shape = ("circle", "square")[(i // 2) % 2]
        examples.append(encoder.encode(f"s{i}", Image.new("RGB", (32, 32), color), "describe the image .",
                                       {"chosen": f"a {color} {shape} .", "rejected": f"a {other} {shape} ."}))
    return examples


def _batch(processor, examples):
    return MultiViewCollator(processor.tokenizer.pad_token_id, ("chosen", "rejected"))(examples)


def _objective(**knobs):
    return Objective({"bradley_terry": BradleyTerryTerm(**knobs)})


def test_reward_model_learns_a_separable_toy_and_reports_accuracy(tiny_checkpoint):
    torch.manual_seed(0)
    backbone = load_backbone(str(tiny_checkpoint))
    reward_model = RewardModel(backbone, seed=0)
    processor = backbone.processor
    train = _pairs(processor, 8)
    held_out = _batch(processor, _pairs(processor, 8, offset=100))
    module = RewardModelModule(reward_model, _objective(), optimizer=lambda p: torch.optim.Adam(p, lr=3e-3))
    before = module.step(held_out)
    loader = torch.utils.data.DataLoader(train, batch_size=8, shuffle=False,
                                         collate_fn=MultiViewCollator(processor.tokenizer.pad_token_id,
                                                                      ("chosen", "rejected")))
    trainer = pl.Trainer(max_steps=40, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, train_dataloaders=loader)
    reward_model.eval()
    with torch.no_grad():
        after = module.step(held_out)
    assert after.loss < before.loss * 0.5
    assert after.metrics["rewards/accuracies"].item() == 1.0  # every held-out pair ranked right
    assert after.metrics["rewards/margins"].item() > 0.5


def test_saved_reward_model_loads_back_by_path_with_its_head(tiny_checkpoint, tmp_path):
    backbone = load_backbone(str(tiny_checkpoint))
    reward_model = RewardModel(backbone, seed=3).eval()
    with torch.no_grad():
        reward_model.head.bias.fill_(0.25)  # a head that is not the default init
    batch = _batch(backbone.processor, _pairs(backbone.processor, 4))
    with torch.no_grad():
        expected = reward_model.scores(batch, ("chosen", "rejected"))
    save_reward_model(reward_model, tmp_path / "rm")
    loaded = load_reward_model(tmp_path / "rm")
    with torch.no_grad():
        got = loaded.scores(batch, ("chosen", "rejected"))
    for view in expected:
        assert torch.equal(got[view], expected[view])
    assert not any(p.requires_grad for p in loaded.parameters())  # it scores; it does not train
    assert reward_model_identity(tmp_path / "rm")["model_type"] == "llava"
    with pytest.raises(ConfigError, match="not a reward model"):
        reward_model_identity(tiny_checkpoint)  # a plain policy export has no head


def test_a_reward_model_of_another_tokenizer_or_family_is_refused(tiny_checkpoint, other_tokenizer_checkpoint):
    policy = load_backbone(str(tiny_checkpoint))
    identity = RewardModel(policy).identity()
    assert reward_model_problems(identity, policy) == []
    assert "family" in reward_model_problems({**identity, "model_type": "qwen2_vl"}, policy)[0]
    other = RewardModel(load_backbone(str(other_tokenizer_checkpoint))).identity()
    assert any("tokenizer" in p for p in reward_model_problems(other, policy))


def test_label_noise_flips_an_exact_fraction_of_the_training_pairs(tiny_parts):
    _, processor = tiny_parts
    pairs = _pairs(processor, 10)
    noisy = FlippedPairs(pairs, fraction=0.3, seed=1)
    flipped = [i for i in range(10) if noisy[i].meta["label_flipped"]]
    assert len(flipped) == 3
    for i in range(10):
        swap = i in flipped
        assert noisy[i].responses["chosen"] == pairs[i].responses["rejected" if swap else "chosen"]
        assert noisy[i].responses["rejected"] == pairs[i].responses["chosen" if swap else "rejected"]
    assert len(flipped_indices(1000, 0.2, seed=0)) == 200 and len(flipped_indices(1000, 0.4, seed=0)) == 400
    assert flipped_indices(1000, 0.2, seed=0) < flipped_indices(1000, 0.4, seed=0)  # nested: only how many differs
    assert flipped_indices(10, 0.0) == frozenset()
    with pytest.raises(ConfigError, match="label_noise"):
        flipped_indices(10, 1.5)


def test_reward_model_objective_checks_its_knobs_and_its_terms(tiny_checkpoint):
    with pytest.raises(ConfigError, match="label_noise"):
        BradleyTerryTerm(label_noise=-0.1)
    with pytest.raises(ConfigError, match="margin"):
        BradleyTerryTerm(margin=-1.0)
    reward_model = RewardModel(load_backbone(str(tiny_checkpoint)))
    with pytest.raises(ConfigError, match="exactly one BradleyTerryTerm"):
        RewardModelModule(reward_model, Objective({"dpo": DPOTerm()}), optimizer=torch.optim.Adam)
