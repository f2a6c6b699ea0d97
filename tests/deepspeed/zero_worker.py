"""Runs DeepSpeed ZeRO for real on DeepSpeed's CPU accelerator (gloo), in a process of its own.

``python -m tests.deepspeed.zero_worker SCENARIO OUT.json [STAGE]``; launched by tests/deepspeed/test_zero_cpu.py
(directly for one rank, through ``torch.distributed.run`` for two). A process of its own because DeepSpeed picks
its accelerator once per process and a process group is global state the rest of the suite must not inherit.
Every rank writes ``OUT.json.<rank>``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from pathlib import Path

os.environ["DS_ACCELERATOR"] = "cpu"
for key, value in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": os.environ.get("MASTER_PORT", "29533"), "RANK": "0",
                   "WORLD_SIZE": "1", "LOCAL_RANK": "0"}.items():
    os.environ.setdefault(key, value)

import torch  # noqa: E402

from tests.conftest import WORDS  # noqa: E402

VIEWS = ("chosen", "rejected", "chosen_corrupted")
LR = 1e-2


def tiny_checkpoint(directory: Path) -> Path:
    from vlmalign.models.tiny_llava import TinyLlavaSpec, build_tiny_llava
    from vlmalign.models.tokenizer import train_word_tokenizer

    tokenizer = train_word_tokenizer([" ".join(WORDS)], extra_words=[*WORDS, "user", "assistant", ":"])
    spec = TinyLlavaSpec(image_size=32, patch_size=8, vision_hidden=32, vision_layers=1, vision_heads=2,
                         text_hidden=32, text_layers=2, text_heads=2, max_positions=128)
    model, processor = build_tiny_llava(spec, tokenizer, seed=0)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def datamodule(processor):
    from vlmalign.data.corruptions import RandomResizedCrop
    from vlmalign.data.datamodule import ShapesDataModule

    return ShapesDataModule(processor, views=VIEWS, task="preference", num_train_scenes=6, num_val_scenes=2,
                            world={"image_size": 32}, max_length=80, batch_size=3, corruption=RandomResizedCrop(),
                            corruption_seed=0)


def module(backbone, reference, lr=LR):
    from vlmalign.module import AlignmentModule
    from vlmalign.objectives import AnchorTerm, ConditionalTerm, DPOTerm, Objective

    objective = Objective({"dpo": DPOTerm(), "conditional": ConditionalTerm(), "anchor": AnchorTerm()})
    return AlignmentModule(backbone, objective, optimizer=lambda p: torch.optim.AdamW(p, lr=lr), reference=reference)


def move_policy(backbone, value=0.01) -> None:
    """LoRA B = 0 makes the policy equal its reference; move it so the reference terms matter."""
    with torch.no_grad():
        for name, parameter in backbone.named_parameters():
            if "lora_B" in name:
                parameter.fill_(value)


def engine_dpo_steps(stage: int, root: Path) -> dict:
    """Outside Lightning: deepspeed.initialize on the policy, two mDPO steps; the plain torch path alongside."""
    import deepspeed

    from vlmalign.distributed import deepspeed_config
    from vlmalign.models import load_backbone
    from vlmalign.reference import FrozenCopyReference

    path = tiny_checkpoint(root / "tiny")  # before the process group: HF saves only on rank 0 once it exists
    deepspeed.init_distributed("gloo")
    results = {}
    for kind in ("plain", "zero"):
        torch.manual_seed(0)
        backbone = load_backbone(str(path))
        mod = module(backbone, FrozenCopyReference())  # the copy is made now, from whole weights
        batch = next(iter(datamodule(backbone.processor).train_dataloader()))
        optimizer = torch.optim.AdamW([p for p in backbone.parameters() if p.requires_grad], lr=LR)
        losses = []
        if kind == "plain":
            for _ in range(2):
                loss = mod.step(batch).loss
                losses.append(loss.item())
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(backbone.parameters(), 1.0)
                optimizer.step()
        else:
            config = deepspeed_config(stage, precision="32-true", gradient_clipping=1.0)
            config["train_micro_batch_size_per_gpu"] = 3
            engine, *_ = deepspeed.initialize(model=mod, optimizer=optimizer, config=config, dist_init_required=False)
            sharded = [p for p in backbone.parameters() if hasattr(p, "ds_id")]
            results["partitioned_numel"] = sum(p.numel() for p in sharded)
            results["full_numel"] = sum(p.ds_numel for p in sharded) if sharded else 0
            results["shard_numel"] = sum(p.ds_tensor.numel() for p in sharded) if sharded else 0
            for _ in range(2):
                loss = mod.step(batch).loss
                losses.append(loss.item())
                engine.backward(loss)
                engine.step()
        results[kind] = losses
    return results


def lightning_fit(stage: int, root: Path, reference_name: str, steps: int = 2, ckpt: str | None = None,
                  lr: float = LR, zero3_init: bool = False) -> dict:
    """Lightning's DeepSpeedStrategy (CPU-accelerator subclass) fitting mDPO with a LoRA policy."""
    import pytorch_lightning as pl

    from vlmalign.distributed import deepspeed_config
    from vlmalign.distributed.run import deepspeed_checkpoint_problem
    from vlmalign.distributed.workarounds import CPUDeepSpeedStrategy
    from vlmalign.models import load_backbone
    from vlmalign.reference import FrozenCopyReference, LoraDisabledReference

    path = root / "tiny"
    if not path.exists():
        tiny_checkpoint(path)
    pl.seed_everything(0)
    backbone = load_backbone(str(path), lora={"enabled": True, "r": 4, "alpha": 8})
    reference = {"frozen": FrozenCopyReference, "lora_disabled": LoraDisabledReference}[reference_name]()
    mod = module(backbone, reference, lr=lr)
    move_policy(backbone)
    losses = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            losses.append(float(outputs["loss"]))

    config = deepspeed_config(stage, precision="32-true", gradient_clipping=1.0)
    trainer = pl.Trainer(accelerator="cpu", devices=1, strategy=CPUDeepSpeedStrategy(config=config,
                         process_group_backend="gloo"), precision="32-true", max_steps=steps, logger=False,
                         callbacks=[Record()], enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                         default_root_dir=str(root))
    trainer.fit(mod, datamodule=datamodule(backbone.processor), ckpt_path=ckpt, weights_only=True)
    saved = root / f"ckpt-{reference_name}-{steps}"
    trainer.save_checkpoint(saved)
    sharded_reference = bool(getattr(getattr(reference, "backbone", None), "_vlmalign_sharded", False))
    return {"losses": losses, "global_step": trainer.global_step, "checkpoint": str(saved),
            "checkpoint_problem": deepspeed_checkpoint_problem(saved), "engine": type(trainer.strategy.model).__name__,
            "reference_sharded": sharded_reference}


def export_after_fit(root: Path) -> dict:
    """After a ZeRO-3 fit the policy is gathered back (unshard_after_fit): save_pretrained writes whole tensors."""
    import pytorch_lightning as pl
    from safetensors.torch import load_file

    from vlmalign.distributed import deepspeed_config
    from vlmalign.distributed.run import after_fit
    from vlmalign.distributed.workarounds import CPUDeepSpeedStrategy
    from vlmalign.models import load_backbone
    from vlmalign.reference import LoraDisabledReference

    path = tiny_checkpoint(root / "tiny")
    backbone = load_backbone(str(path), lora={"enabled": True, "r": 4, "alpha": 8})
    mod = module(backbone, LoraDisabledReference())
    trainer = pl.Trainer(accelerator="cpu", devices=1, strategy=CPUDeepSpeedStrategy(
        config=deepspeed_config(3, precision="32-true"), process_group_backend="gloo"), precision="32-true",
        max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        limit_val_batches=0, default_root_dir=str(root))
    dm = datamodule(backbone.processor)
    trainer.fit(mod, datamodule=dm)
    batch = next(iter(dm.train_dataloader()))
    with torch.no_grad():
        loss_sharded = mod.step(batch).loss.item()  # through ZeRO-3's gathering hooks
    empty_before = sum(1 for p in backbone.parameters() if p.numel() == 0)
    after_fit(trainer, backbone)
    empty_after = sum(1 for p in backbone.parameters() if p.numel() == 0)
    backbone.save_pretrained(root / "export")  # what train.py does next
    tensors = load_file(str(next((root / "export").glob("*.safetensors"))))
    with torch.no_grad():
        loss_unsharded = mod.step(batch).loss.item()  # a plain forward, the engine and its hooks gone
    return {"empty_before": empty_before, "empty_after": empty_after,
            "empty_saved": sum(1 for t in tensors.values() if t.numel() == 0), "saved": len(tensors),
            "loss_sharded": loss_sharded, "loss_unsharded": loss_unsharded}


def zero3_init_precomputed(root: Path) -> dict:
    """A policy built as ZeRO-3 shards (distributed.zero3_init): the precomputed reference gathers it and gets the
    same cache key and table as from an ordinary copy of the same weights."""
    from vlmalign.distributed import deepspeed_config
    from vlmalign.distributed.zero3 import is_partitioned, zero3_init
    from vlmalign.models import load_backbone
    from vlmalign.reference import PrecomputedReference

    path = tiny_checkpoint(root / "tiny")
    out = {}
    for kind in ("plain", "sharded"):
        if kind == "plain":
            backbone = load_backbone(str(path))
        else:
            with zero3_init(deepspeed_config(3, precision="32-true")):
                backbone = load_backbone(str(path))
        out[f"{kind}_partitioned"] = is_partitioned(backbone)
        reference = PrecomputedReference(str(root / f"cache-{kind}"))
        module(backbone, reference)
        reference.prepare(datamodule(backbone.processor), VIEWS)
        out[f"{kind}_key"] = reference.path.name
        out[f"{kind}_table"] = reference.table
    return out


def main() -> None:
    scenario, out = sys.argv[1], Path(sys.argv[2])
    stage = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    root = Path(tempfile.mkdtemp(prefix=f"zero-{scenario}-"))
    if scenario == "engine":
        result = engine_dpo_steps(stage, root)
    elif scenario == "lightning":
        first = lightning_fit(stage, root, "lora_disabled", steps=2)
        resumed = lightning_fit(stage, root, "lora_disabled", steps=3, ckpt=first["checkpoint"])
        result = {"first": first, "resumed": resumed}
    elif scenario == "reference_parity":
        # lr 0: both runs see the same policy at every step; only the reference differs in how it is computed
        result = {name: lightning_fit(stage, root, name, steps=1, lr=0.0) for name in ("frozen", "lora_disabled")}
        result["ln2x3"] = 3 * math.log(2)
    elif scenario == "export":
        result = export_after_fit(root)
    elif scenario == "zero3_init":
        result = zero3_init_precomputed(root)
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    rank = os.environ.get("RANK", "0")
    Path(f"{out}.{rank}").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
