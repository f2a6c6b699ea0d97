"""TRL's ``DPOTrainer`` (pinned: ``trl==1.16.0``) as the peer of ``benchmarks/preference_throughput.py --peer trl``.

Runs N optimizer steps of TRL's own DPO (loss_type sigmoid) on a saved LLaVA checkpoint and shapes-world pairs and
returns step time, throughput, peak RSS and losses. Everything TRL decides is left to TRL, except what has to match
vlmalign's run: fp32, no gradient checkpointing (TRL defaults it on), plain ``torch.optim.AdamW`` (TRL defaults to the
fused variant; vlmalign's ``conf/optimizer/adamw.yaml`` is the plain one), full batches only, no eval/saving/wandb.
Run it in its own process (the CLI below) so that peak RSS is this trainer's alone:

    python -m benchmarks.peers.trl_dpo --model-dir D --num-pairs 256 --batch-size 8 --steps 20 --warmup 3 \
        [--precompute-ref]        # prints one JSON line on stdout; TRL's chatter goes to stderr
    python -m benchmarks.peers.trl_dpo --model-dir D --gpu --bf16 --image-size 224 ...   # gpu_suite.sh's peer

``--gpu``: on the one GPU. ``--bf16``: bf16 autocast over fp32 weights (``DPOConfig(bf16=True)``, TRL's and the HF
Trainer's usual mixed precision; 16 bytes of state per parameter, as ZeRO-2's bf16 weights + fp32 master weights and
moments). The line has tokens/s over all tokens (image, prompt, both responses), peak memory and MFU from the FLOPs
count of ``benchmarks/device_metrics.py`` (6 N T policy + 2 N T for the online reference copy), as the vlmalign
members of ``benchmarks/gpu_suite.sh`` have.

Pairs: TRL's conversational vision format (``shapes_pairs``), one image per pair, the user turn holding an image
part and the prompt text, as vlmalign's encoder builds it. TRL 1.16 handles it for LLaVA: the collator fills the
image part, renders the project's chat template and expands ``<image>`` to the 64 patch tokens; the completion is
" <caption> </s>", i.e. caption tokens + EOS, the same response tokens vlmalign scores (checked token by token
against ``SequenceEncoder``). One difference: TRL tokenizes with ``add_special_tokens=False`` (:327), expecting the
chat template to emit BOS; the project's template does not, so TRL's sequences lack the leading ``<s>`` that
vlmalign's processor call adds - one token shorter (~1% of a ~100-token sequence).

How TRL 1.16.0 runs vision DPO (``trl/trainer/dpo_trainer.py`` line numbers; worth quoting in docs/performance.md):

* No upfront tokenization for image data: ``skip_prepare_dataset = self._is_vision_dataset`` (:847). Every batch is
  built on the fly by ``DataCollatorForVisionPreference`` (:297-401): chat template, image processor and three
  tokenizer calls (:321, :329, :336), then ``flush_left`` (:380). Images stored in a ``datasets.Dataset`` are also
  PNG-decoded on every access.
* Each image is processed and encoded twice per forward: ``images = [...] * 2  # repeat for chosen and rejected``
  (:306, prompts likewise :317); the batch is [chosen; rejected] = 2B full sequences (image span + prompt +
  response) in one forward (:1299, split at :1316).
* Reference model: with ``ref_model=None`` and no PEFT, TRL loads a second full copy from the model's path
  (``create_model_from_path``, :908-927; kept in eval mode, :990) and runs it on the same 2B-row batch under
  ``no_grad`` every step (:1327-1338). So per pair and step the vision tower runs 4 times (2 policy, 2 reference)
  and the LM runs the 64-token image span 4 times.
* ``precompute_ref_log_probs=True`` is refused for image data: ``ValueError("... not supported for vision
  datasets ...")`` (:764-770). It would not work if let through either: the vision collator builds its output from
  the processor's tensors only (:393-401) and drops ``ref_chosen_logps``/``ref_rejected_logps`` (the text collator
  forwards them, :177-205), and the vision signature columns (:1150-1158) omit them, so ``remove_unused_columns``
  drops them too; ``_compute_loss`` then fails reading ``inputs["ref_chosen_logps"]`` (:1319).
* Log-probs come from a fused LM head (``add_fused_lm_head``, :960-962, ``trl/trainer/utils.py:1548``) that projects
  only the completion positions, in tiles, without materialising (2B, T, V) logits; sequence log-prob = sum over
  completion tokens (:1304); loss = -logsigmoid(beta * delta) (:1388).
* Every step also computes entropy, mean logits, top-1 accuracy, rewards and margins with ~15 ``.item()`` host syncs
  (:1537-1601) - free on CPU, sync points on a GPU.
* DPOConfig defaults that differ from vlmalign's run: ``gradient_checkpointing=True`` (dpo_config.py:148),
  ``max_length=1024`` (dpo_config.py:195; our sequences are ~100 tokens, so nothing is truncated),
  ``optim="adamw_torch_fused"``; ``disable_dropout=True`` (dpo_config.py:185; the tiny model has no dropout).

Patch for ``precompute_ref=True`` (``PrecomputedRefDPOTrainer`` inside ``run_trl_dpo``, plus ``_Collator``): the
trainer is built as for the online reference (the only way past :764); ``precompute_reference`` then frees the
reference copy (from ``trainer.ref_model`` and from accelerate's ``_models`` list, checked with a weakref) and calls
TRL's own ``_precompute_ref_logps`` (:1168), which scores every pair once, before training, with the still-untrained
policy (``self.ref_model or self.model``, :1203) through TRL's collator and ``compute_ref_log_probs`` and appends
the two columns; from then on ``_compute_loss`` takes TRL's precomputed branch (:1319). ``_Collator`` forwards the
two columns and the trainer runs with ``remove_unused_columns=False``. The reference copy exists only before
training and is smaller than the training state (gradients + two Adam moments), so it does not set peak RSS. The
precompute time is reported as ``precompute_s``, outside the timed steps. Check: per-step losses of the two modes
agree (same weights, same batches; differences ~1e-7 from padding in the precompute batches).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import statistics
import sys
import time
import weakref
from dataclasses import dataclass, field

import torch

from benchmarks import device_metrics
from benchmarks.process_memory import peak_rss_mib

# Nothing may be downloaded or reported at run time; set before transformers/trl are imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

# The shapes-preference data of conf/data/shapes_preference.yaml: train split, 1-3 objects, shape-swap errors.
WORLD = {"split": "train", "min_objects": 1, "max_objects": 3, "error_mix": {"shape": 1.0}}  # no priors: the
# benchmark's pairs stay those its recorded numbers were measured on


def shapes_pairs(num_pairs: int, seed: int = 0, image_size: int = 64) -> list[dict]:
    """Pairs 0..num_pairs-1 of ``ShapesPreferenceDataset`` of ``WorldSpec(seed=seed, ...)```` in TRL's vision format.

    Deterministic: pair i depends on (seed, i) only. The texts are ``pair["prompt"][0]["content"][1]["text"]``,
    ``pair["chosen"][0]["content"][0]["text"]`` and likewise for ``rejected``.
    """
    from vlmalign.data.shapes import WorldSpec, render_scene
    from vlmalign.data.shapes_preference import ShapesPreferenceDataset

    # The encoder is only used by __getitem__; pair_for needs just the scenes and the error knobs.
    spec = WorldSpec(seed=seed, min_objects=WORLD["min_objects"], max_objects=WORLD["max_objects"],
                     image_size=image_size)
    world = ShapesPreferenceDataset(None, WORLD["split"], num_pairs, spec, error_mix=WORLD["error_mix"])
    pairs = []
    for i in range(num_pairs):
        scene, pair = world.pair_for(i)
        pairs.append({
            "images": [render_scene(scene, image_size)],
            "prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": pair.prompt}]}],
            "chosen": [{"role": "assistant", "content": [{"type": "text", "text": pair.chosen}]}],
            "rejected": [{"role": "assistant", "content": [{"type": "text", "text": pair.rejected}]}],
        })
    return pairs


def run_trl_dpo(model_dir: str, pairs: list[dict], *, batch_size: int, steps: int, warmup: int,
                beta: float = 0.1, lr: float = 1e-5, precompute_ref: bool = False, seed: int = 0,
                group_by_length: bool = False, output_dir: str, gpu: bool = False, bf16: bool = False,
                peak_tflops: float | None = None) -> dict:
    """Train ``warmup + steps`` steps of TRL DPO; time the last ``steps`` (each one including data loading).
    ``gpu``: on the one GPU; ``bf16``: in bf16 autocast (module docstring); MFU against ``peak_tflops``."""
    from datasets import Dataset
    from transformers import AutoProcessor, PrinterCallback
    from trl import DPOConfig, DPOTrainer, __version__
    from trl.trainer.dpo_trainer import DataCollatorForVisionPreference

    from benchmarks.peers.hf_step_timer import StepTimer

    if len(pairs) < batch_size:
        raise ValueError(f"{len(pairs)} pairs cannot fill one batch of {batch_size}")
    peak, peak_source = device_metrics.peak_tflops(peak_tflops)  # an unknown GPU fails now, not after training
    baseline_rss = peak_rss_mib()  # interpreter + torch + transformers + trl, before any model exists

    class PrecomputedRefDPOTrainer(DPOTrainer):
        """The patch (module docstring): precompute through TRL's own path, which __init__ refuses for images."""

        def precompute_reference(self) -> None:
            from trl.trainer.utils import hash_module

            # Free TRL's reference copy (accelerate also holds it in `_models`); `_precompute_ref_logps` then scores
            # with the still-untrained policy, as TRL does for text data (:1203).
            reference = weakref.ref(self.ref_model)
            self.accelerator._models = [m for m in self.accelerator._models if m is not self.ref_model]
            self.ref_model = None
            gc.collect()
            if reference() is not None:
                raise RuntimeError("the reference model is still referenced; it would inflate peak RSS")
            self._precompute_model_hash = hash_module(self.model)  # names the (temporary) cache file
            self.train_dataset = self._precompute_ref_logps(self.train_dataset, "train", batch_size)
            self.precompute_ref_logps = True  # `_compute_loss` reads the columns (:1319)

    processor = AutoProcessor.from_pretrained(model_dir)
    dataset = Dataset.from_list(pairs)
    if group_by_length:  # transformers' LengthGroupedSampler reads a `length` column (TRL builds none for images)
        from vlmalign.data.encoding import SequenceEncoder

        encoder = SequenceEncoder(processor, max_length=1024)
        dataset = dataset.add_column("length", [_text_length(encoder, pair) for pair in pairs])
    args = DPOConfig(
        output_dir=output_dir, loss_type=["sigmoid"], beta=beta, learning_rate=lr, seed=seed,
        per_device_train_batch_size=batch_size, max_steps=warmup + steps, gradient_accumulation_steps=1,
        bf16=bf16, fp16=False, use_cpu=not gpu, gradient_checkpointing=False,
        optim="adamw_torch", weight_decay=0.0, max_grad_norm=1.0,  # = vlmalign's AdamW and gradient_clip_val
        max_length=1024,  # TRL's default; > any prompt (64 image tokens + ~10) + response here, so no truncation
        dataloader_num_workers=0, dataloader_drop_last=True,  # every timed step is a full batch
        remove_unused_columns=False,  # keeps the precomputed reference columns (:1150-1158 would drop them)
        train_sampling_strategy="group_by_length" if group_by_length else "random",
        report_to="none", save_strategy="no", eval_strategy="no", logging_steps=1, disable_tqdm=True,
    )
    collator = _Collator(DataCollatorForVisionPreference(processor=processor, max_length=args.max_length))
    timer = StepTimer()
    trainer_class = PrecomputedRefDPOTrainer if precompute_ref else DPOTrainer
    trainer = trainer_class(model=model_dir, args=args, train_dataset=dataset,
                            processing_class=processor, data_collator=collator, callbacks=[timer])
    trainer.remove_callback(PrinterCallback)  # it prints every log dict on stdout

    notes = []
    precompute_s = None
    if precompute_ref:
        start = time.perf_counter()
        trainer.precompute_reference()
        precompute_s = time.perf_counter() - start
        collator.response_tokens.clear()
        collator.tokens.clear()
        notes.append("precompute_ref_log_probs is refused by TRL 1.16 for image data (dpo_trainer.py:764); "
                     "patched: reference log-probs computed once before training by TRL's own "
                     "_precompute_ref_logps with the untrained policy, reference copy freed, collator forwards "
                     "the columns (remove_unused_columns=False)")
    else:
        notes.append("online reference: TRL's separate full copy of the model (dpo_trainer.py:927), "
                     "vision tower 4x per pair per step")
    device_metrics.reset_peak_memory()
    trainer.train()

    durations = [b - a for a, b in zip(timer.ends, timer.ends[1:])][warmup:]
    median = statistics.median(durations)
    # One collator call per step; accelerate may fetch one batch ahead, so average over batches, not steps.
    tokens_per_batch = statistics.mean(collator.response_tokens)
    all_tokens = statistics.mean(collator.tokens)
    parameters = sum(p.numel() for p in trainer.model.parameters())
    flops = device_metrics.dense_flops(parameters, trained_tokens=all_tokens,
                                       forward_tokens=0 if precompute_ref else all_tokens)
    return {
        "framework": "trl",
        "trl_version": __version__,
        "precompute_ref": precompute_ref,
        "group_by_length": group_by_length,
        "batch_size": batch_size,
        "steps_timed": len(durations),
        "median_step_s": median,
        "step_time_s": median,  # the name benchmarks/zero_objectives.py reports it under (gpu_suite.sh's lines)
        "mean_step_s": statistics.mean(durations),
        "step_s": durations,  # the timed steps; a shared CPU shows up here as outliers
        "pairs_per_s": batch_size / median,
        "response_tokens_per_batch": tokens_per_batch,  # chosen + rejected completion tokens, EOS included
        "response_tokens_per_s": tokens_per_batch / median,
        "precision": "bf16 autocast, fp32 weights" if bf16 else "fp32",
        "parameters": parameters,
        "tokens_per_step": all_tokens,  # image + prompt + response tokens of both rows of every pair
        "tokens_per_s": all_tokens / median,
        "model_tflop_per_step": flops / 1e12,
        "peak_tflops": peak,
        "peak_tflops_source": peak_source,
        "mfu": device_metrics.mfu(flops, median, 1, peak),
        **device_metrics.peak_memory(),
        "peak_rss_mib": peak_rss_mib(),
        "torch_threads": torch.get_num_threads(),
        "baseline_rss_mib": baseline_rss,
        "precompute_s": precompute_s,
        "first_loss": timer.losses[0],
        "final_loss": timer.losses[-1],
        "losses": timer.losses,  # every step's, warm-up included
        "ln2": math.log(2),
        "notes": notes,
    }


def _text_length(encoder, pair: dict) -> int:
    """The length vlmalign's ``data.group_by_length`` groups the same pair by (``SequenceEncoder.text_length``)."""
    responses = [pair[key][0]["content"][0]["text"] for key in ("chosen", "rejected")]
    return encoder.text_length(pair["prompt"][0]["content"][1]["text"], responses)


@dataclass
class _Collator:
    """TRL's vision collator, plus the two precomputed-reference columns it drops (:393-401), and counts of the
    response tokens and of all tokens of each batch for tokens/s and FLOPs."""

    inner: object
    response_tokens: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)

    def __call__(self, examples: list[dict]) -> dict:
        refs = {key: [example[key] for example in examples] for key in ("ref_chosen_logps", "ref_rejected_logps")
                if key in examples[0]}
        batch = self.inner(examples)
        for key, values in refs.items():
            batch[key] = torch.tensor(values)
        self.response_tokens.append(int(batch["completion_mask"].sum()))
        self.tokens.append(int(batch["attention_mask"].sum()))
        return batch


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True, help="save_pretrained dir of a LLaVA model and its processor")
    parser.add_argument("--num-pairs", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precompute-ref", action="store_true")
    parser.add_argument("--group-by-length", action="store_true",
                        help="transformers' LengthGroupedSampler (train_sampling_strategy=group_by_length)")
    parser.add_argument("--output-dir", default=None, help="Trainer output dir (nothing is saved); default: a temp dir")
    parser.add_argument("--image-size", type=int, default=64, help="rendered scene size (the model's image size)")
    parser.add_argument("--gpu", action="store_true", help="train on the one GPU")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast over fp32 weights (module docstring)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="dense bf16 peak of the GPU for MFU; default: from its name")
    args = parser.parse_args(argv)
    if args.gpu and not torch.cuda.is_available():
        parser.error(f"--gpu, but torch {torch.__version__} sees no CUDA device")

    import tempfile

    with tempfile.TemporaryDirectory() as scratch, contextlib.redirect_stdout(sys.stderr):
        pairs = shapes_pairs(args.num_pairs, args.seed, args.image_size)
        result = run_trl_dpo(args.model_dir, pairs, batch_size=args.batch_size,
                             steps=args.steps, warmup=args.warmup, beta=args.beta, lr=args.lr,
                             precompute_ref=args.precompute_ref, seed=args.seed,
                             group_by_length=args.group_by_length, output_dir=args.output_dir or scratch,
                             gpu=args.gpu, bf16=args.bf16, peak_tflops=args.peak_tflops)
    device_metrics.emit({"benchmark": "trl_dpo", **result})


if __name__ == "__main__":
    main()
