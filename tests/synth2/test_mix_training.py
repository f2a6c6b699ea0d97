"""Mixed real + synthetic batches: exact composition, synthetic samples never reach the vision tower, a run
trains end to end, and every misuse is a named ConfigError."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from tests.hydra_utils import compose_train
from vlmalign.data.synth2_mix import EpochSequentialSampler, MixedBatches, Synth2MixDataModule
from vlmalign.errors import ConfigError
from vlmalign.module import AlignmentModule
from vlmalign.objectives import Objective, SFTTerm, Synth2CaptioningTerm
from vlmalign.pipelines.synth2.captions import ShapesCaptionSource
from vlmalign.train import train
from vlmalign.utils.instantiate import build

MIX = dict(num_real_scenes=12, num_synthetic=20, num_val_scenes=4, batch_size=8)


def datamodule(backbone, generator_dir, ratio=0.5, views=("chosen", "synthetic"), **kwargs):
    return Synth2MixDataModule(backbone.processor, str(generator_dir), ShapesCaptionSource(seed=0), views=views,
                               synthetic_ratio=ratio, **{**MIX, **kwargs})


class CountImages:
    """Counts the images each module was run on (first argument's batch size)."""

    def __init__(self, module) -> None:
        self.images = 0
        self.calls = 0
        module.register_forward_pre_hook(self)

    def __call__(self, module, args) -> None:
        self.calls += 1
        self.images += args[0].shape[0]


def test_every_batch_has_the_configured_composition(backbone, generator_dir):
    data = datamodule(backbone, generator_dir, ratio=0.25)
    loader = data.train_dataloader()
    for batch in list(loader)[:4]:
        assert batch["views"]["synthetic"]["input_ids"].shape[0] == 2  # round(8 * 0.25)
        assert batch["views"]["chosen"]["input_ids"].shape[0] == 6
        assert batch["pixel_values"].shape[0] == 6 and batch["vision_embeddings"].shape == (2, 9, 128)
        assert all(s.startswith("synth-") for s in batch["sample_ids"][6:])
        assert not any(s.startswith("synth-") for s in batch["sample_ids"][:6])


def test_order_is_seeded_and_a_resumed_loader_continues_it(backbone, generator_dir):
    data = datamodule(backbone, generator_dir)
    mixed = data.train_set
    full = [mixed[i].sample_id for i in range(3 * len(mixed))]  # three epochs
    assert full == [datamodule(backbone, generator_dir).train_set[i].sample_id for i in range(3 * len(mixed))]
    assert full[: len(mixed)] != full[len(mixed): 2 * len(mixed)]  # each epoch reshuffles
    sampler = EpochSequentialSampler(len(mixed), epoch=1, skip=8)
    assert [mixed[i].sample_id for i in sampler] == full[len(mixed) + 8: 2 * len(mixed)]
    assert [mixed[i].sample_id for i in sampler] == full[2 * len(mixed): 3 * len(mixed)]  # the next epoch whole


def test_synthetic_samples_never_reach_the_vision_tower(backbone, generator_dir):
    tower = CountImages(backbone.core.model.vision_tower)
    projector = CountImages(backbone.projector)
    objective = Objective({"captions": Synth2CaptioningTerm()})
    module = AlignmentModule(backbone, objective, partial(torch.optim.AdamW, lr=1e-3))
    batch = next(iter(datamodule(backbone, generator_dir, ratio=0.75).train_dataloader()))
    module.step(batch).loss.backward()
    assert (tower.images, projector.images) == (2, 8)  # 2 real images; the projector saw 2 + 6 rows
    # a batch of synthetic samples only: the tower does not run and gets no gradient
    backbone.zero_grad(set_to_none=True)
    tower.calls = 0
    batch = next(iter(datamodule(backbone, generator_dir, ratio=1.0).train_dataloader()))
    assert "pixel_values" not in batch
    module.step(batch).loss.backward()
    assert tower.calls == 0
    assert all(p.grad is None for p in backbone.core.model.vision_tower.parameters())
    assert any(p.grad is not None for p in backbone.projector.parameters())


def test_a_mixed_batch_trains(backbone, generator_dir):
    objective = Objective({"captions": Synth2CaptioningTerm()})
    module = AlignmentModule(backbone, objective, partial(torch.optim.AdamW, lr=3e-3))
    optimizer = module.configure_optimizers()
    batch = next(iter(datamodule(backbone, generator_dir, ratio=0.5).train_dataloader()))
    losses = []
    for _ in range(8):
        out = module.step(batch)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    assert losses[-1] < 0.8 * losses[0]
    assert set(out.metrics) >= {"nll/real", "nll/synthetic", "loss/captions"}


def test_synthetic_rows_are_not_silently_dropped_by_an_objective_that_ignores_them(backbone, generator_dir):
    with pytest.raises(ConfigError, match="dropped; use objective=synth2"):
        datamodule(backbone, generator_dir, views=Objective({"sft": SFTTerm()}).views)
    datamodule(backbone, generator_dir, ratio=0.0, views=("chosen",))  # real only: nothing to drop


def test_bad_knobs_are_named(backbone, generator_dir):
    with pytest.raises(ConfigError, match="data.synthetic_ratio=1.5"):
        datamodule(backbone, generator_dir, ratio=1.5)
    with pytest.raises(ConfigError, match="data.num_synthetic=0"):
        datamodule(backbone, generator_dir, num_synthetic=0)
    with pytest.raises(ConfigError, match="encode_once"):
        datamodule(backbone, generator_dir).encode_once()


def test_a_generator_for_another_or_a_training_vision_tower_is_refused(backbone, generator_dir):
    data = datamodule(backbone, generator_dir)
    with pytest.raises(ConfigError, match="freeze it"):
        data.prepare_from_policy(backbone)  # the right tower, but it would train
    backbone.core.model.vision_tower.requires_grad_(False)
    data.prepare_from_policy(backbone)
    with torch.no_grad():
        next(backbone.core.model.vision_tower.parameters()).add_(0.01)
    with pytest.raises(ConfigError, match="another vision tower"):
        data.prepare_from_policy(backbone)


def test_mixed_batches_cover_every_real_example_each_epoch():
    mixed = MixedBatches(list(range(10)), [f"s{i}" for i in range(7)], batch_size=4, synthetic_per_batch=1, seed=3)
    assert mixed.batches_per_epoch == 4  # ceil(10 real / 3 real slots)
    epoch = [mixed[i] for i in range(len(mixed))]
    assert set(x for x in epoch if isinstance(x, int)) == set(range(10))
    assert [x for x in epoch[3::4]] == [x for x in epoch if isinstance(x, str)]  # slot 3 of each batch


def test_the_experiment_runs_end_to_end(tmp_path, synth2_cache, generator_dir):
    cfg = compose_train([
        "experiment=synth2/mix", "~base", f"data.generator_path={generator_dir}", "data.synthetic_ratio=0.5",
        "data.num_real_scenes=12", "data.num_synthetic=16", "data.num_val_scenes=2", "data.batch_size=4",
        "trainer.max_steps=3", "trainer.val_check_interval=3", "eval.num_scenes=3", "eval.max_new_tokens=6",
        "callbacks=none", "logger=none", "scheduler.num_warmup_steps=1",
    ], tmp_path, synth2_cache)
    metrics = train(cfg)
    assert 0.0 <= metrics["test/exact_match"] <= 1.0 and "test/pope/f1" not in metrics
    model = build(cfg.model, "model", init_from=str(tmp_path / "model"))
    frozen = build(cfg.model, "model")
    for (name, trained), fresh in zip(model.core.model.vision_tower.state_dict().items(),
                                      frozen.core.model.vision_tower.state_dict().values()):
        assert torch.equal(trained, fresh), f"the frozen vision tower moved: {name}"


def test_the_llm_caption_option_composes_into_the_mix(tmp_path):
    from vlmalign.pipelines.synth2.captions import LLMCaptionSource

    cfg = compose_train(["experiment=synth2/mix", "data.generator_path=unused", "captions@data.captions=llm",
                         "data.captions.concepts=[dog,bicycle,kitchen]",
                         "data.captions.backend.base_url=http://127.0.0.1:9/v1", "data.captions.backend.model=m"],
                        tmp_path)
    source = build(cfg.data.captions, "data.captions")
    assert isinstance(source, LLMCaptionSource) and source.identity["concepts"] == ["dog", "bicycle", "kitchen"]
