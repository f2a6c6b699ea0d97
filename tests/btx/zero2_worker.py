"""A few steps of Branch-Train-MiX's MoE fine-tune under DeepSpeed ZeRO-2 on DeepSpeed's CPU accelerator, in a
process of its own (``python -m tests.btx.zero2_worker OUT.json``; launched by tests/btx/test_zero2.py; why a
process of its own: tests/deepspeed/zero_worker.py)."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from tests.deepspeed.zero_worker import tiny_checkpoint  # sets DeepSpeed's CPU accelerator and rank variables first


def fit(out: Path, steps: int = 3) -> None:
    import pytorch_lightning as pl
    import torch
    from transformers import AutoModelForImageTextToText

    from tests.btx.conftest import perturbed, save
    from vlmalign.data.datamodule import ShapesDataModule
    from vlmalign.distributed import deepspeed_config
    from vlmalign.distributed.workarounds import CPUDeepSpeedStrategy
    from vlmalign.models import load_backbone
    from vlmalign.module import AlignmentModule
    from vlmalign.objectives import LoadBalancingTerm, Objective, SFTTerm
    from vlmalign.pipelines.btx.merge import btx_merge

    root = Path(tempfile.mkdtemp(prefix="btx-zero2-"))
    seed = tiny_checkpoint(root / "seed")
    dense = AutoModelForImageTextToText.from_pretrained(seed)
    processor = load_backbone(str(seed)).processor
    experts = [save(perturbed(dense, s), processor, root / f"expert{s}") for s in (1, 2)]
    merged = btx_merge(str(seed), root / "moe", experts=experts, seed_as_expert=True, top_k=2)
    pl.seed_everything(0)
    backbone = load_backbone(str(merged))
    objective = Objective({"sft": SFTTerm(), "load_balancing": LoadBalancingTerm(weight=0.01)})
    module = AlignmentModule(backbone, objective, optimizer=lambda p: torch.optim.AdamW(p, lr=1e-2))
    router_before = backbone.core.model.language_model.layers[0].mlp.gate.weight.detach().clone()
    records = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            logged = trainer.callback_metrics
            records.append({"loss": float(outputs["loss"]),
                            "balance": float(logged["train/loss/load_balancing"])})

    strategy = CPUDeepSpeedStrategy(config=deepspeed_config(2, precision="32-true", gradient_clipping=1.0),
                                    process_group_backend="gloo")
    trainer = pl.Trainer(accelerator="cpu", devices=1, strategy=strategy, precision="32-true", max_steps=steps,
                         logger=False, callbacks=[Record()], enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                         default_root_dir=str(root))
    data = ShapesDataModule(backbone.processor, views=("chosen",), task="sft", num_train_scenes=6, num_val_scenes=2,
                            world={"image_size": 32}, max_length=80, batch_size=3)
    trainer.fit(module, datamodule=data)
    router_after = backbone.core.model.language_model.layers[0].mlp.gate.weight.detach()
    out.write_text(json.dumps({"records": records, "engine": type(trainer.strategy.model).__name__,
                               "router_moved": float((router_after - router_before).abs().max())}))


if __name__ == "__main__":
    fit(Path(sys.argv[1]))
