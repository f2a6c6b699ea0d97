"""``vlmalign-build-negatives``: turn a preference dataset into an nSFT dataset (arXiv 2411.14797).

Input: a JSON-lines file of preference pairs (id, prompt, chosen, rejected, image and/or scene), or
the shapes world's preference split generated on the fly (the same pairs training sees). Output:
JSON lines ``{id, image|scene, prompt, chosen, rejected, negative_turns: [{question, answer,
error_type}]}``; samples the builder rejects go to ``<stem>.rejected.jsonl`` beside it, with the reason.

Resumable: ids already in either file are skipped, each line is flushed as it is written, and a last
line cut short by a crash is repaired. ``<stem>.meta.json`` records the builder and the source, so
a resumed run cannot mix turns from two different builders or splits into one file.

Examples::

    vlmalign-build-negatives --shapes-split train --num-scenes 4800 --output data/nsft_train.jsonl
    vlmalign-build-negatives --input pairs.jsonl --output nsft.jsonl --builder llm --backend openai \\
        --base-url http://localhost:8000/v1 --model Qwen2.5-7B-Instruct
    vlmalign-build-negatives --input pairs.jsonl --output nsft.jsonl --builder llm --backend hf --model ./my-llm
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from hydra.errors import HydraException
from omegaconf import OmegaConf
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from vlmalign.errors import ConfigError, VlmalignError
from vlmalign.io.jsonl import JsonlAppender, finished_ids, repair_truncated_tail
from vlmalign.negatives.codebook import load_codebook
from vlmalign.negatives.interface import NegativeBuilder, PreferenceSample
from vlmalign.negatives.sources import read_preference_jsonl, shapes_preference_samples
from vlmalign.utils.compose import compose_train
from vlmalign.utils.files import write_json_atomic

PROG = "vlmalign-build-negatives"
SHAPES_KNOBS = ("pair_kind", "plausibility", "num_errors", "error_mix")
WORLD_FLAGS = {"world_seed": "seed", "min_objects": "min_objects", "max_objects": "max_objects"}  # flag -> world.*


def build_parser() -> argparse.ArgumentParser:
    intro, _, details = __doc__.replace("``", "").partition("\n\n")
    parser = argparse.ArgumentParser(prog=PROG, description=intro, epilog=details,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", "-o", required=True, type=Path, help="nSFT dataset to write (JSON lines)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", "-i", type=Path, help="preference pairs, JSON lines")
    source.add_argument("--shapes-split", help="generate the shapes preference split (train, val, ...) instead")

    shapes = parser.add_argument_group("shapes split (defaults: conf/data/shapes_preference.yaml)")
    shapes.add_argument("--num-scenes", type=int, help="scenes of the split (default: num_<split>_scenes of the conf)")
    shapes.add_argument("--world-seed", type=int)
    shapes.add_argument("--min-objects", type=int)
    shapes.add_argument("--max-objects", type=int)
    shapes.add_argument("--pair-kind", help="injected, text_detectable or image_only (data/shapes_preference.py)")
    shapes.add_argument("--plausibility", type=float)
    shapes.add_argument("--num-errors", type=int)
    shapes.add_argument("--error-mix", help="weights of injected error types, e.g. existence=1,shape=2")

    builder = parser.add_argument_group("builder")
    builder.add_argument("--builder", choices=("rules", "llm"),
                         help="rules: exact, from the shapes scene; llm: a prompted LLM (default: rules when every "
                              "sample has a scene, else llm)")
    builder.add_argument("--codebook", type=Path, help="error codebook YAML (default: the packaged one)")
    builder.add_argument("--limit", type=int, help="only the first N samples of the input")

    llm = parser.add_argument_group("llm builder")
    llm.add_argument("--backend", choices=("openai", "hf"), help="openai: an OpenAI-compatible HTTP endpoint; "
                                                                 "hf: a local transformers causal LM")
    llm.add_argument("--model", help="model name (openai) or checkpoint directory (hf)")
    llm.add_argument("--base-url", help="e.g. http://localhost:8000/v1 (openai)")
    llm.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    llm.add_argument("--timeout", type=float, default=120.0, help="seconds per request (openai)")
    llm.add_argument("--retries", type=int, default=3, help="retries of a failed request (openai)")
    llm.add_argument("--max-new-tokens", type=int, default=512)
    llm.add_argument("--device", default="auto", help="hf: cpu, cuda, cuda:1, ... (auto: cuda if available)")
    llm.add_argument("--cache-dir", type=Path,
                     help="completion cache (default: $VLMALIGN_CACHE/negatives, else .cache/vlmalign/negatives)")
    llm.add_argument("--no-cache", action="store_true", help="always ask the model")
    return parser


def shapes_data_defaults() -> dict[str, Any]:
    """The shapes preference knobs as a training run composes them (``data=shapes_preference``), so the
    default split here is the split training sees."""
    try:
        cfg = compose_train(["data=shapes_preference"])
    except HydraException as error:
        raise ConfigError(f"cannot compose the shapes data config ({error}); pass every shapes option "
                          "explicitly") from error
    knobs = OmegaConf.to_container(cfg.data, resolve=False)  # the knobs are literals; others need a full run
    knobs["world"] = OmegaConf.to_container(cfg.world, resolve=True)
    return knobs


def _error_mix(text: str | None) -> dict[str, float] | None:
    if text is None:
        return None
    mix = {}
    for part in text.split(","):
        name, sep, weight = part.partition("=")
        try:
            mix[name.strip()] = float(weight)
        except ValueError:
            sep = ""
        if not sep:
            raise ConfigError(f"--error-mix {text!r}: expected name=weight pairs separated by commas, "
                              "e.g. existence=1,shape=2")
    return mix


def load_samples(args: argparse.Namespace) -> tuple[list[PreferenceSample], dict[str, Any]]:
    """(samples, a description of the source for the resume check)."""
    if args.input is not None:
        samples = read_preference_jsonl(args.input)
        source: dict[str, Any] = {"kind": "jsonl"}
    else:
        conf = shapes_data_defaults()
        knobs = {k: getattr(args, k) if getattr(args, k) is not None else conf.get(k) for k in SHAPES_KNOBS}
        knobs["world"] = {**conf["world"], **{field: getattr(args, flag) for flag, field in WORLD_FLAGS.items()
                                              if getattr(args, flag) is not None}}
        knobs["error_mix"] = _error_mix(args.error_mix) if args.error_mix is not None else conf.get("error_mix")
        num_scenes = args.num_scenes if args.num_scenes is not None else conf.get(f"num_{args.shapes_split}_scenes")
        missing = [k for k, v in knobs.items() if v is None and k != "error_mix"]
        if num_scenes is None:
            missing.insert(0, "num_scenes")
        if missing:
            raise ConfigError(f"--shapes-split {args.shapes_split}: no value for {missing}; pass "
                              + " ".join(f"--{m.replace('_', '-')}" for m in missing))
        samples = shapes_preference_samples(args.shapes_split, int(num_scenes), **knobs)
        # num_scenes is left out: scene i does not depend on it, so a split may be extended by a resumed run.
        source = {"kind": "shapes", "split": args.shapes_split, **knobs}
    if args.limit is not None:
        samples = samples[: args.limit]
    return samples, source


def make_builder(args: argparse.Namespace, samples: list[PreferenceSample]) -> NegativeBuilder:
    codebook = load_codebook(args.codebook)
    kind = args.builder or ("rules" if all(s.scene is not None for s in samples) else "llm")
    if kind == "rules":
        from vlmalign.negatives.shapes_rules import ShapesRuleBuilder

        without_scene = next((s for s in samples if s.scene is None), None)
        if without_scene is not None:
            raise ConfigError(f"--builder rules needs a ground-truth 'scene' on every sample; {without_scene.origin} "
                              f"(id {without_scene.id!r}) has none. Use --builder llm for image-only data.")
        return ShapesRuleBuilder(codebook)
    from vlmalign.llm import HFCausalLMBackend, OpenAICompatibleBackend
    from vlmalign.negatives.llm import LLMNegativeBuilder

    if args.backend is None or args.model is None:
        raise ConfigError("--builder llm needs --backend (openai or hf) and --model"
                          + ("" if args.builder else " (chosen because some samples have no 'scene')"))
    if args.backend == "openai":
        if not args.base_url:
            raise ConfigError("--backend openai needs --base-url, e.g. http://localhost:8000/v1")
        backend = OpenAICompatibleBackend(args.base_url, args.model, args.api_key_env, args.timeout, args.retries,
                                          max_tokens=args.max_new_tokens)
    else:
        backend = HFCausalLMBackend(args.model, args.max_new_tokens, args.device)
    cache_dir = None if args.no_cache else args.cache_dir or _default_cache_dir()
    return LLMNegativeBuilder(backend, cache_dir, codebook)


def _default_cache_dir() -> Path:
    # The same root as conf/paths: $VLMALIGN_CACHE, else <$VLMALIGN_ROOT or the working dir>/.cache/vlmalign.
    root = Path(os.environ.get("VLMALIGN_ROOT") or Path.cwd())
    return Path(os.environ.get("VLMALIGN_CACHE") or root / ".cache" / "vlmalign") / "negatives"


def sidecar(output: Path, suffix: str) -> Path:
    return output.with_name(output.stem + suffix)


def check_meta(meta_path: Path, meta: dict[str, Any], output: Path) -> None:
    """Refuse to resume into an output built by another builder or from another source."""
    if not meta_path.exists():
        return
    try:
        previous = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{meta_path} is unreadable ({error}); delete it only if {output} was built with the "
                          "same builder and source as this run") from error
    if previous != meta:
        differs = sorted(k for k in set(previous) | set(meta) if previous.get(k) != meta.get(k))
        raise ConfigError(f"{output} was built with a different {' and '.join(differs)} ({meta_path}: "
                          f"{json.dumps({k: previous.get(k) for k in differs})}); resuming would mix the two. "
                          "Write to a new --output, or delete the old output and its sidecar files to rebuild.")


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    started = time.perf_counter()
    output: Path = args.output
    if args.input is not None and output.resolve() == args.input.resolve():
        raise ConfigError(f"--output {output} is the input file; write the nSFT dataset to a new file")
    samples, source = load_samples(args)  # every input row is validated before the output is touched
    builder = make_builder(args, samples)
    rejected_path, meta_path = sidecar(output, ".rejected.jsonl"), sidecar(output, ".meta.json")
    meta = json.loads(json.dumps({"builder": builder.identity, "source": source}))  # as it reads back from disk
    check_meta(meta_path, meta, output)
    done = finished_ids(output) | finished_ids(rejected_path)  # validates both before anything is cut
    for path in (output, rejected_path):
        cut = repair_truncated_tail(path)
        if cut is not None:
            say(console, f"repaired {path}: removed a truncated last line ({len(cut)} characters)", style="yellow")
    todo = [s for s in samples if s.id not in done]
    builder.stats.skipped = len(samples) - len(todo)
    if not meta_path.exists():
        write_json_atomic(meta_path, meta)

    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with JsonlAppender(output) as out, JsonlAppender(rejected_path) as rejected, \
            Progress(*columns, console=console) as progress:
        task = progress.add_task("negatives", total=len(todo))
        for outcome in builder.build_many(todo):
            if outcome.rejection is None:
                out.write(outcome.sample.to_output(outcome.turns))
            else:
                rejected.write({"id": outcome.sample.id, "reason": outcome.rejection.reason,
                                "detail": outcome.rejection.detail, "completion": outcome.rejection.raw})
            progress.advance(task)
    summary = {**builder.stats.as_dict(), "total": len(samples), "seconds": round(time.perf_counter() - started, 2)}
    print_summary(console, summary, output, rejected_path)
    print(json.dumps(summary))  # stdout: one machine-readable line; the table and progress go to stderr
    return summary


def say(console: Console, message: str, style: str | None = None) -> None:
    """One message on one line whatever the terminal width: without a terminal (CI, a log file) rich wraps at 80
    columns, which split a long path from the words users and tests grep for."""
    console.print(message, style=style, markup=False, highlight=False, soft_wrap=True)


def print_summary(console: Console, summary: dict[str, Any], output: Path, rejected_path: Path) -> None:
    table = Table(title=f"negatives -> {output}")
    table.add_column("count")
    table.add_column("samples", justify="right")
    for key, meaning in (("total", "input samples"), ("skipped", "already done (resumed)"),
                         ("built", "written with turns"), ("empty", "written, no error found"),
                         ("rejected", f"rejected -> {rejected_path.name}"), ("cached", "completions from cache"),
                         ("turns", "corrective turns written")):
        table.add_row(f"{key}: {meaning}", str(summary[key]))
    for reason, count in summary["rejected_reasons"].items():
        table.add_row(f"  rejected: {reason}", str(count))
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=True)
    try:
        run(args, console)
    except VlmalignError as error:
        say(console, f"{PROG}: error: {error}", style="bold red")
        return 2
    except KeyboardInterrupt:
        say(console, f"{PROG}: interrupted; finished samples are kept, rerun the same command to resume")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
