"""File datasets through the real model, objective, reference cache and training entry point."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch
from PIL import Image

from tests.data_adapters.schemas import rlaif_v_row, save_image, write_json, write_jsonl, write_rlaif_v
from tests.hydra_utils import compose_train
from vlmalign.data.adapters.llava import LlavaSftAdapter
from vlmalign.data.adapters.rlaif_v import RlaifVAdapter
from vlmalign.data.corruptions import RandomResizedCrop
from vlmalign.models import load_backbone
from vlmalign.module import AlignmentModule
from vlmalign.objectives import AnchorTerm, ConditionalTerm, DPOTerm, Objective, SFTTerm
from vlmalign.reference import FrozenCopyReference, PrecomputedReference
from vlmalign.train import train

MDPO_VIEWS = ("chosen", "rejected", "chosen_corrupted")


def _module(backbone, objective, reference):
    return AlignmentModule(backbone, objective, optimizer=lambda p: torch.optim.SGD(p, 0.1), reference=reference)


def test_mdpo_loss_on_rlaif_v_pairs_with_frozen_and_precomputed_references(make_datamodule, tiny_checkpoint,
                                                                          tmp_path):
    path = write_rlaif_v(tmp_path / "RLAIF-V-Dataset_000.parquet", [rlaif_v_row(i) for i in range(6)])
    backbone = load_backbone(str(tiny_checkpoint))
    datamodule = make_datamodule(RlaifVAdapter(), path, views=MDPO_VIEWS, corruption=RandomResizedCrop())
    batch = next(iter(datamodule.train_dataloader()))
    objective = Objective({"dpo": DPOTerm(), "conditional": ConditionalTerm(), "anchor": AnchorTerm()})
    losses = {}
    for reference in (FrozenCopyReference(), PrecomputedReference(str(tmp_path / "reference"))):
        module = _module(backbone, objective, reference)
        reference.prepare(datamodule, MDPO_VIEWS)  # the precomputed cache keys on datamodule.identity()
        with torch.no_grad():
            losses[reference.name] = module.step(batch).loss.item()
    # policy == reference: each of the three terms is -log sigmoid(0) = ln 2
    assert losses["frozen"] == pytest.approx(3 * math.log(2), rel=1e-5)
    assert losses["precomputed"] == pytest.approx(losses["frozen"], rel=1e-5)
    assert list((tmp_path / "reference").glob("*.pt"))


def test_sft_on_multi_turn_llava_conversations(make_datamodule, tiny_checkpoint, tmp_path):
    save_image(tmp_path / "a.jpg", "red", "JPEG")
    turn = [{"from": "human", "value": "is there a red circle ?"}, {"from": "gpt", "value": "no"}]
    rows = [{"id": str(i), "image": "a.jpg", "conversations": [
        {"from": "human", "value": "<image>\ndescribe the image ."}, {"from": "gpt", "value": "a red square"},
        *turn * (i % 2)]} for i in range(4)]
    datamodule = make_datamodule(LlavaSftAdapter(), write_json(tmp_path / "llava.json", rows), views=("chosen",),
                                 batch_size=4, val_fraction=0.25)
    batch = datamodule.collator([datamodule.train_set[i] for i in range(3)] + [datamodule.val_set[0]])
    module = _module(load_backbone(str(tiny_checkpoint)), Objective({"sft": SFTTerm()}), None)
    loss = module.step(batch).loss
    assert torch.isfinite(loss) and loss.item() > 0


def test_two_training_steps_with_data_rlaif_v(tmp_path):
    path = write_rlaif_v(tmp_path / "RLAIF-V-Dataset_000.parquet", [rlaif_v_row(i) for i in range(6)])
    cfg = compose_train([
        "data=rlaif_v", f"data.train_file={path}", "data.val_fraction=0.34", "data.batch_size=2",
        "data.max_length=120", "objective=dpo", "reference=precomputed", "~base", "corruption=crop_0_20",
        "trainer.max_steps=2", "trainer.val_check_interval=2", "callbacks=none", "logger=none",
        "evaluate_initial=false", "eval.num_scenes=2", "eval.max_new_tokens=4",
    ], tmp_path / "run", tmp_path / "cache")
    metrics = train(cfg)
    assert "test/chair_i" not in metrics  # a dataset file is not the shapes world: no table of zeros (vlmalign-eval)
    assert (tmp_path / "run" / "model" / "config.json").exists()
    cached = list((tmp_path / "cache" / "reference").glob("*.pt"))
    assert len(cached) == 1
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())


def test_good_rows_plus_one_truncated_jpeg_train_on_the_good_rows_with_the_bad_one_logged_and_counted(
        tmp_path, caplog):
    """Image.verify() does not decode JPEG data: a truncated JPEG passed the build-time check and then failed the
    reference pass, with no checkpoint saved. The check now decodes, so on_error=skip drops it up front."""
    generator = torch.Generator().manual_seed(0)
    for i in range(6):
        noise = torch.randint(0, 256, (32, 32, 3), generator=generator, dtype=torch.uint8).numpy()
        Image.fromarray(noise).save(tmp_path / f"good{i}.jpg", "JPEG")
    Image.fromarray(noise).save(tmp_path / "whole.jpg", "JPEG")
    whole = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "bad.jpg").write_bytes(whole[: len(whole) // 2])  # a download cut short: headers intact
    rows = [{"id": f"good-{i}", "prompt": "describe the image .", "chosen": "a red square",
             "rejected": f"a blue circle {i}", "image": f"good{i}.jpg"} for i in range(6)]
    rows.insert(3, {**rows[0], "id": "cut-short", "image": "bad.jpg"})
    path = write_jsonl(tmp_path / "pairs.jsonl", rows)
    cfg = compose_train([
        "data=local_preference", f"data.train_file={path}", "data.val_fraction=0.34", "data.batch_size=2",
        "data.max_length=120", "data.on_error=skip", "objective=dpo", "reference=precomputed", "~base",
        "trainer.max_steps=2", "trainer.val_check_interval=2", "callbacks=none", "logger=none",
        "evaluate_initial=false", "eval.num_scenes=2", "eval.max_new_tokens=4",
    ], tmp_path / "run", tmp_path / "cache")
    with caplog.at_level(logging.WARNING, logger="vlmalign.data"):
        train(cfg)
    assert (tmp_path / "run" / "metrics.json").exists()
    skipped = [r.getMessage() for r in caplog.records if "on_error=skip: skipped" in r.getMessage()]
    assert len(skipped) == 1 and "row 3 (id cut-short)" in skipped[0] and "bad.jpg" in skipped[0], skipped
    assert any("1 rows or pairs skipped ({'unreadable_image': 1})" in r.getMessage() for r in caplog.records)
