"""TRL's ``GRPOTrainer`` (pinned: ``trl==1.16.0``) as the peer of ``benchmarks/rl_throughput.py``.

Runs N optimizer steps of TRL's own GRPO on a saved LLaVA checkpoint, the prompts of vlmalign's
``data=shapes_prompts`` in the order vlmalign's loader draws them, and the shapes scene reward, and returns step time,
rollout tokens/s and peak RSS (``benchmarks/peers/rl_timing.py``, the same code as the vlmalign side). Run it in its
own process (the CLI) so that peak RSS is this trainer's alone:

    python -m benchmarks.peers.trl_grpo --model-dir D --world-json '{...}' --prompt "describe the image ." \
        --prompts-per-step 4 --group-size 4 --max-new-tokens 48 --steps 10 --warmup 2 --beta 0.04 --threads 2
        # prints one JSON line on stdout; TRL's chatter goes to stderr

Matched to vlmalign's ``objective=grpo`` run (conf/objective/grpo.yaml, conf/rollout/default.yaml), each setting
where TRL's default differs: fp32 (TRL defaults to bf16), no gradient checkpointing (TRL defaults it on), plain
``torch.optim.AdamW`` (TRL: the fused variant), β 0.04 (TRL: 0, no reference model), ``loss_type="grpo"`` (a
per-sequence token mean, then the batch mean, as vlmalign's ``masked_mean(..., dim=1).mean()``; TRL defaults to
"dapo"), learning rate and a constant schedule (vlmalign's benchmark run takes ``scheduler=constant``), prompts
unshuffled (``shuffle_dataset=False``: the dataset is already in vlmalign's order). Already equal by default:
temperature 1, top-p 1, top-k off, the image token suppressed during sampling (grpo_trainer.py:1170), clip ε 0.2,
``num_iterations=1`` (= ``ppo_epochs``), group-scaled advantages, gradient-norm clip 1.0, no vLLM, no
``mask_truncated_completions``. ``per_device_train_batch_size`` counts completions, as vlmalign's
``data.batch_size`` does: prompts per step × group size.

How TRL 1.16.0 runs vision GRPO (``trl/trainer/grpo_trainer.py`` line numbers), i.e. what differs by design:

* Prompts: the sampler repeats each prompt ``num_generations`` times (``RepeatSampler``, :1309), so a step's batch
  is P·G rows, each carrying its own copy of the image. ``_tokenize_prompts`` renders the chat template and runs the
  processor on all P·G (image, prompt) pairs (:1737), and ``generate`` prefills P·G sequences, the vision tower on
  P·G images (:1873). vlmalign encodes P prompts and lets ``generate`` expand them ``num_return_sequences`` times
  (the prefill, vision tower included, still runs on P·G rows).
* After sampling, the processor runs again on all P·G images and prompts for the training forwards (:2529); the
  policy's forward and the reference's (a second full model loaded from the path, :1003) each run P·G full
  sequences (image span + prompt + completion), the vision tower on P·G images. vlmalign's rollout view gives the
  G samples of a prompt one image and, with ``share_prefix``, one image + prompt prefix.
* With ``num_iterations=1`` and no gradient accumulation the "old" log-probs are not computed (:2642-2657): the loss
  takes the current log-probs, detached, as the old ones (:3066). vlmalign's ``OnlineRLModule.prepare`` computes
  them with one more no-grad forward of the policy every step, whatever ``ppo_epochs`` is.
* Log-probs come from a fused LM head that projects only the completion positions, in chunks (``add_fused_lm_head``,
  :1068), with every completion token's entropy computed alongside (:3035, for the entropy metric).
* Every step logs ~30 metrics with ``.item()`` host syncs (free on CPU).

Tokens: TRL renders the project's chat template through the processor's ``apply_chat_template``, which here gives
the prompt ids vlmalign's ``SequenceEncoder`` gives, ``<s>`` included, token for token (tests/test_rl_benchmark.py);
the completions are on both sides the sampled ids up to and including the first EOS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass

import torch

# Nothing may be downloaded or reported at run time; set before transformers/trl are imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")


@dataclass(frozen=True)
class GRPOSettings:
    """What the run does, each the value vlmalign's side runs with (``benchmarks/rl_throughput.py`` passes them)."""

    prompts_per_step: int = 4
    group_size: int = 4  # completions per prompt (TRL's num_generations)
    max_new_tokens: int = 48
    steps: int = 10  # timed
    warmup: int = 2
    beta: float = 0.04  # the KL coefficient (vlmalign's kl_coef)
    clip_eps: float = 0.2
    lr: float = 1e-5
    temperature: float = 1.0
    seed: int = 0
    threads: int = 1  # torch threads

    @property
    def num_scenes(self) -> int:
        return self.prompts_per_step * (self.warmup + self.steps)


def shapes_prompt_rows(world: dict, prompt: str, settings: GRPOSettings):
    """The train prompts of vlmalign's ``ShapesPromptDataModule(world=world, prompt=prompt, num_train_scenes=
    settings.num_scenes, shuffle_seed=settings.seed)`` as TRL dataset rows, in the order its loader draws them (its
    first epoch, ``prompts_per_step`` prompts a batch), and the scenes the reward scores against (``scene_index``)."""
    from vlmalign.data.sampling import ResumableShuffleSampler
    from vlmalign.data.shapes import world_spec
    from vlmalign.data.shapes_prompts import ShapesPromptDataset

    dataset = ShapesPromptDataset("train", settings.num_scenes, world_spec(world, "world"), prompt)
    rows = []
    for index in ResumableShuffleSampler(settings.num_scenes, settings.seed, settings.prompts_per_step).order(0):
        record = dataset[index]
        content = [{"type": "image"}, {"type": "text", "text": record.prompt}]
        rows.append({"prompt": [{"role": "user", "content": content}], "image": record.image, "scene_index": index})
    return rows, dataset.scenes


def scene_reward_function(scenes):
    """vlmalign's scene reward (covered − hallucinated objects) as a TRL reward function; ``scene_index`` is the
    dataset column TRL passes through, one per completion."""
    from vlmalign.rl.rewards import scene_reward

    def shapes_scene_reward(completions, scene_index, **kwargs) -> list[float]:
        # TRL decodes with skip_special_tokens=True, as vlmalign's rollout does; vlmalign also strips the text.
        return [scene_reward(scenes[i], completion[0]["content"].strip())
                for completion, i in zip(completions, scene_index, strict=True)]

    return shapes_scene_reward


def run_trl_grpo(model_dir: str, rows: list[dict], scenes, settings: GRPOSettings, output_dir: str) -> dict:
    """Train ``warmup + steps`` GRPO steps; time the last ``steps``."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer, __version__

    from benchmarks.peers.hf_step_timer import StepTimer
    from benchmarks.peers.rl_timing import GenerationTimer, step_summary
    from benchmarks.process_memory import peak_rss_mib

    s = settings
    if len(rows) < s.num_scenes:
        raise ValueError(f"{len(rows)} prompts cannot fill {s.warmup + s.steps} steps of {s.prompts_per_step}")
    baseline_rss = peak_rss_mib()  # interpreter + torch + transformers + trl, before any model exists
    args = GRPOConfig(
        output_dir=output_dir, seed=s.seed, max_steps=s.warmup + s.steps, learning_rate=s.lr,
        lr_scheduler_type="constant", per_device_train_batch_size=s.prompts_per_step * s.group_size,
        gradient_accumulation_steps=1, num_generations=s.group_size, max_completion_length=s.max_new_tokens,
        temperature=s.temperature, top_p=1.0, top_k=0, beta=s.beta, epsilon=s.clip_eps, num_iterations=1,
        loss_type="grpo", scale_rewards="group",
        shuffle_dataset=False,  # the rows are in vlmalign's loader order
        bf16=False, fp16=False, use_cpu=True, gradient_checkpointing=False, model_init_kwargs={"dtype": torch.float32},
        optim="adamw_torch", weight_decay=0.0, max_grad_norm=1.0,  # = conf/optimizer/adamw.yaml, gradient_clip_val
        use_vllm=False, dataloader_num_workers=0, log_completions=False,
        report_to="none", save_strategy="no", eval_strategy="no", logging_steps=1, disable_tqdm=True,
    )
    timer = StepTimer()
    trainer = GRPOTrainer(model=model_dir, reward_funcs=scene_reward_function(scenes), args=args,
                          train_dataset=Dataset.from_list(rows), callbacks=[timer])
    trainer.remove_callback(PrinterCallback)  # it prints every log dict on stdout
    generation = GenerationTimer(trainer.model, trainer.eos_token_ids)
    trainer.train()
    logs = trainer.state.log_history
    return {
        "framework": "trl",
        "trl_version": __version__,
        **step_summary(timer.ends, s.warmup, generation),
        "baseline_rss_mib": baseline_rss,
        "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "losses": timer.losses,  # every step's, warm-up included
        "rewards": [log["reward"] for log in logs if "reward" in log],  # each step's mean scene reward
        "completion_lengths": [log["completions/mean_length"] for log in logs if "completions/mean_length" in log],
    }


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, GRPOSettings]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True, help="save_pretrained dir of a LLaVA model and its processor")
    parser.add_argument("--world-json", required=True, help="the resolved world config (conf/world/shapes.yaml)")
    parser.add_argument("--prompt", required=True)
    for name, value in asdict(GRPOSettings()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args(argv)
    return args, GRPOSettings(**{name: getattr(args, name) for name in GRPOSettings.__dataclass_fields__})


def main(argv: list[str] | None = None) -> None:
    args, settings = parse_args(argv)
    torch.set_num_threads(settings.threads)
    rows, scenes = shapes_prompt_rows(json.loads(args.world_json), args.prompt, settings)
    with tempfile.TemporaryDirectory() as scratch, contextlib.redirect_stdout(sys.stderr):
        result = run_trl_grpo(args.model_dir, rows, scenes, settings, scratch)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
