"""Shapes unpaired (KTO) data: faithful caption = desirable, injected error = undesirable, a class-balance knob;
KTO through the real module on it; and a config that pairs KTO with data that lacks its views."""

from __future__ import annotations

import pytest
import torch

from tests.hydra_utils import compose_train
from vlmalign.data.datamodule import ShapesDataModule
from vlmalign.data.shapes_preference import ShapesPreferenceDataset
from vlmalign.data.unpaired import UNPAIRED_VIEWS
from vlmalign.errors import ConfigError, DataError
from vlmalign.models import load_backbone
from vlmalign.module import AlignmentModule
from vlmalign.objectives import KTOTerm, Objective
from vlmalign.objectives.functional_kto import kto_loss, kto_reference_point
from vlmalign.reference import FrozenCopyReference
from vlmalign.utils.instantiate import build
from vlmalign.validation import validate_run_config


def _unpaired(processor, **overrides):
    settings = dict(views=UNPAIRED_VIEWS, task="unpaired", num_train_scenes=40, num_val_scenes=8,
                    world={"image_size": 32}, max_length=100, batch_size=4, pair_kind="injected")
    return ShapesDataModule(processor, **{**settings, **overrides})


def test_faithful_captions_are_desirable_and_injected_errors_undesirable(tiny_parts):
    datamodule = _unpaired(tiny_parts[1])
    examples = datamodule.train_set
    pairs = examples.pairs
    assert isinstance(pairs, ShapesPreferenceDataset) and len(examples) == 40
    for index in range(6):
        _, pair = pairs.pair_for(index)
        example = examples[index]
        label = "desirable" if examples.labels[index] else "undesirable"
        expected = pair.chosen if examples.labels[index] else pair.rejected
        encoded = examples.pairs.encoder.encode_response(expected)
        assert example.responses[label] == encoded[:len(example.responses[label])]
        assert example.meta["errors"] == (() if examples.labels[index] else pair.errors)
        assert examples.completion(index) == expected
        next_text = examples.completion((index + 1) % len(examples))
        assert example.responses["mismatched"] == examples.pairs.encoder.encode_response(next_text)[
            :len(example.responses["mismatched"])]


def test_class_balance_knob(tiny_parts):
    processor = tiny_parts[1]
    for fraction in (0.2, 0.5, 0.8):
        labels = _unpaired(processor, num_train_scenes=500, desirable_fraction=fraction).train_set.labels
        assert abs(sum(labels) / len(labels) - fraction) < 0.06
    for fraction in (0.0, 1.0):
        with pytest.raises(ConfigError, match=f"data.desirable_fraction={fraction} must be in \\(0, 1\\)"):
            _unpaired(processor, desirable_fraction=fraction)
    with pytest.raises(DataError, match="the shapes val split \\(2 scenes\\): all 2 examples are"):
        _unpaired(processor, num_val_scenes=2, desirable_fraction=0.01)


def test_kto_through_the_module_matches_the_maths_on_its_views(tiny_checkpoint, tiny_parts):
    policy = load_backbone(str(tiny_checkpoint))
    datamodule = _unpaired(policy.processor)
    batch = datamodule.collator([datamodule.train_set[i] for i in range(8)])
    module = AlignmentModule(policy, Objective({"kto": KTOTerm(beta=0.5)}), optimizer=lambda p: torch.optim.SGD(p, 0.1),
                             reference=FrozenCopyReference())
    with torch.no_grad():  # move the policy off the reference, so rewards and z_0 are not all 0
        for parameter in policy.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    policy.eval()
    out = module.step(batch)
    from vlmalign.models.views import view_logps

    logps = view_logps(policy, batch, UNPAIRED_VIEWS)
    ref = module.reference.logps(batch, UNPAIRED_VIEWS)
    desirable = torch.tensor(datamodule.train_set.labels[:8])
    assert (logps["desirable"].count > 0).tolist() == desirable.tolist()
    assert (logps["undesirable"].count > 0).tolist() == (~desirable).tolist()
    sums = torch.where(desirable, logps["desirable"].sum, logps["undesirable"].sum)
    ref_sums = torch.where(desirable, ref["desirable"].sum, ref["undesirable"].sum)
    point = kto_reference_point(logps["mismatched"].sum, ref["mismatched"].sum)
    assert out.loss.item() == pytest.approx(kto_loss(sums, ref_sums, desirable, point, 0.5).mean().item(), rel=1e-5)
    out.loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.parameters())


def test_kto_on_pair_data_and_dpo_on_unpaired_data_are_config_errors(tmp_path):
    for overrides, match in ((["objective=kto"], r"objective terms \['kto'\] need views \['desirable', 'undesirable', "
                                                 r"'mismatched'\] but data.task=preference"),
                             (["objective=dpo", "data=shapes_unpaired"], r"need views \['chosen', 'rejected'\] but "
                                                                         r"data.task=unpaired")):
        cfg = compose_train(overrides, tmp_path)
        with pytest.raises(ConfigError, match=match):
            validate_run_config(cfg, build(cfg.objective, "objective"))
    cfg = compose_train(["objective=kto", "data=shapes_unpaired"], tmp_path)
    validate_run_config(cfg, build(cfg.objective, "objective"))  # the pair that fits passes
