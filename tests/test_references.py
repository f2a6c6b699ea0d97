"""Reference strategies agree on one batch; the precomputed cache is keyed by model and data."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from vlmalign.data.corruptions import RandomResizedCrop
from vlmalign.data.datamodule import ShapesDataModule
from vlmalign.errors import ConfigError
from vlmalign.models import load_backbone
from vlmalign.module import AlignmentModule
from vlmalign.objectives import AnchorTerm, ConditionalTerm, DPOTerm, Objective
from vlmalign.reference import FrozenCopyReference, LoraDisabledReference, PrecomputedReference

VIEWS = ("chosen", "rejected", "chosen_corrupted")


def _objective():
    return Objective({"dpo": DPOTerm(), "conditional": ConditionalTerm(), "anchor": AnchorTerm()})


def _datamodule(processor, **overrides):
    settings = dict(views=VIEWS, task="preference", num_train_scenes=6, num_val_scenes=2, world={"image_size": 32},
                    max_length=80, batch_size=3, corruption=RandomResizedCrop(), corruption_seed=0)
    return ShapesDataModule(processor, **{**settings, **overrides})


def _module(backbone, reference):
    return AlignmentModule(backbone, _objective(), optimizer=lambda p: torch.optim.SGD(p, 0.1), reference=reference)


def test_three_reference_strategies_give_the_same_loss(tiny_checkpoint, tmp_path):
    # The reference is the *initial* policy: LoRA with B = 0 equals the base model exactly.
    policy = load_backbone(str(tiny_checkpoint), lora={"enabled": True, "r": 4, "alpha": 8})
    datamodule = _datamodule(policy.processor)
    batch = next(iter(datamodule.train_dataloader()))
    losses = {}
    for reference in (FrozenCopyReference(), LoraDisabledReference(), PrecomputedReference(str(tmp_path))):
        module = _module(policy, reference)
        reference.prepare(datamodule, VIEWS)
        with torch.no_grad():
            for name, parameter in policy.named_parameters():  # the trained policy moves away from it
                if "lora_B" in name:
                    parameter.fill_(0.01)
        out = module.step(batch)
        losses[reference.name] = out.loss.item()
        with torch.no_grad():
            for name, parameter in policy.named_parameters():
                if "lora_B" in name:
                    parameter.zero_()
    assert losses["frozen"] == pytest.approx(losses["lora_disabled"], rel=1e-5)
    assert losses["frozen"] == pytest.approx(losses["precomputed"], rel=1e-5)
    assert abs(losses["frozen"] - 3 * 0.6931) > 1e-4  # not trivially ln 2 per term: the policy moved


def test_policy_equal_to_reference_gives_ln2_per_term(tiny_checkpoint):
    policy = load_backbone(str(tiny_checkpoint))
    module = _module(policy, FrozenCopyReference())
    batch = next(iter(_datamodule(policy.processor).train_dataloader()))
    out = module.step(batch)
    for term in ("dpo", "conditional", "anchor"):
        assert out.metrics[f"loss/{term}"].item() == pytest.approx(0.693147, abs=1e-5)


def test_cache_is_rebuilt_when_data_or_model_change(tiny_checkpoint, tmp_path):
    policy = load_backbone(str(tiny_checkpoint))
    paths = []
    for overrides in ({}, {}, {"plausibility": 0.0}, {"corruption_seed": 1}):
        reference = PrecomputedReference(str(tmp_path))
        _module(policy, reference)
        reference.prepare(_datamodule(policy.processor, **overrides), VIEWS)
        paths.append(reference.path)
    assert paths[0] == paths[1] and len(set(paths)) == 3
    with torch.no_grad():
        next(policy.parameters()).add_(0.01)
    reference = PrecomputedReference(str(tmp_path))
    _module(policy, reference)
    reference.prepare(_datamodule(policy.processor), VIEWS)
    assert reference.path not in paths
    assert len(list(tmp_path.glob("reflogps-*.pt"))) == 4


def test_cache_is_reused_by_a_later_run_with_hydra_config_types(tiny_checkpoint, tmp_path, monkeypatch):
    # Hydra hands the datamodule OmegaConf containers (error_mix); the key must still load back under
    # torch.load(weights_only=True), and another training seed (data order) must reuse the cache.
    from omegaconf import OmegaConf

    policy = load_backbone(str(tiny_checkpoint))
    error_mix = OmegaConf.create({"existence": 1.0, "shape": 1.0})
    first = PrecomputedReference(str(tmp_path))
    _module(policy, first)
    first.prepare(_datamodule(policy.processor, error_mix=error_mix, shuffle_seed=0), VIEWS)
    monkeypatch.setattr(PrecomputedReference, "_compute", lambda *a: pytest.fail("cache recomputed, not reused"))
    later = PrecomputedReference(str(tmp_path))
    _module(policy, later)
    later.prepare(_datamodule(policy.processor, error_mix=error_mix, shuffle_seed=1), VIEWS)
    assert later.table == first.table


def _prepared_cache(checkpoint, cache_dir):
    policy = load_backbone(str(checkpoint))
    reference = PrecomputedReference(str(cache_dir))
    _module(policy, reference)
    datamodule = _datamodule(policy.processor)
    reference.prepare(datamodule, VIEWS)
    return reference, datamodule, {k: dict(v) for k, v in reference.table.items()}


def test_truncated_cache_is_rebuilt_not_loaded(tiny_checkpoint, tmp_path):
    reference, datamodule, good = _prepared_cache(tiny_checkpoint, tmp_path)
    reference.path.write_bytes(reference.path.read_bytes()[:100])
    reference.prepare(datamodule, VIEWS)
    assert reference.table == good


def test_corrupted_image_is_the_same_for_every_consumer(tiny_checkpoint):
    policy = load_backbone(str(tiny_checkpoint))
    first = next(iter(_datamodule(policy.processor).train_dataloader()))
    again = next(iter(_datamodule(policy.processor).train_dataloader()))
    assert torch.equal(first["pixel_values"], again["pixel_values"])
    real, corrupted = first["pixel_values"][:3], first["pixel_values"][3:]
    assert not torch.allclose(real, corrupted)
    assert first["views"]["chosen_corrupted"]["image_index"].tolist() == [3, 4, 5]


def test_misconfigured_references_are_clear(tiny_checkpoint):
    policy = load_backbone(str(tiny_checkpoint))
    with pytest.raises(ConfigError, match="model.lora.enabled=true"):
        _module(policy, LoraDisabledReference())
    with pytest.raises(ConfigError, match="data.corruption is null"):
        _datamodule(policy.processor, corruption=None)
    with pytest.raises(ConfigError, match="data.task=sft"):
        _datamodule(policy.processor, task="sft")


def test_cache_tampered_but_readable_fails_its_checksum_and_is_rebuilt(tiny_checkpoint, tmp_path):
    reference, datamodule, good = _prepared_cache(tiny_checkpoint, tmp_path)
    payload = torch.load(reference.path, weights_only=True)
    sample = next(iter(payload["table"]))
    payload["table"][sample]["chosen"] = (123.0, 1)  # a silent flip: still a valid file, wrong numbers
    torch.save(payload, reference.path)
    reference.prepare(datamodule, VIEWS)
    assert reference.table == good


def test_a_cache_whose_digest_was_deleted_is_rebuilt_not_re_digested(tiny_checkpoint, tmp_path, caplog):
    reference, datamodule, good = _prepared_cache(tiny_checkpoint, tmp_path)
    digest = Path(str(reference.path) + ".sha256")
    assert digest.exists()  # written with the cache, before it was renamed into place
    payload = torch.load(reference.path, weights_only=True)
    payload["table"][next(iter(payload["table"]))]["chosen"] = (123.0, 1)  # tampered, then its digest removed
    torch.save(payload, reference.path)
    digest.unlink()
    with caplog.at_level(logging.WARNING):
        reference.prepare(datamodule, VIEWS)
    assert reference.table == good and "has no recorded checksum" in caplog.text and "rebuilding" in caplog.text
    assert digest.exists()


def test_a_checksummed_file_never_exists_without_its_digest(tmp_path, monkeypatch):
    """The digest is written before the rename: a process killed in between leaves the old file with the new
    digest (refused), never an unvouched file."""
    from vlmalign.utils import files

    target = tmp_path / "cache.pt"
    files.write_file_atomic(target, lambda handle: handle.write(b"old"), checksum=True)

    replace = files.os.replace

    def die_after_the_digest(source, destination):
        if not str(destination).endswith(".sha256"):
            raise KeyboardInterrupt  # stands for a kill between the digest write and the file's rename
        replace(source, destination)

    monkeypatch.setattr(files.os, "replace", die_after_the_digest)
    with pytest.raises(KeyboardInterrupt):
        files.write_file_atomic(target, lambda handle: handle.write(b"new"), checksum=True)
    monkeypatch.undo()
    assert target.read_bytes() == b"old" and "corrupt" in files.digest_problem(target)
    assert not list(tmp_path.glob(".*.tmp"))
