"""``vlmalign-eval``: a hallucination benchmark (POPE, CHAIR on COCO, AMBER, MMHal-Bench) on any model.

Hydra-configured like ``vlmalign-train``: ``conf/evaluate.yaml`` composes one ``conf/benchmark/*.yaml``;
the benchmark's file paths are ``???`` keys set on the command line. The model is any HF image-text-to-
text checkpoint or a trained run's ``model/`` directory; answers go to ``<output_dir>/answers.jsonl``
(resumable), metrics to ``<output_dir>/metrics.json``. ``answers_file=`` (or ``--answers FILE``) scores
an existing answers file, ours or the benchmark's official format, without a model.

    vlmalign-eval benchmark=pope benchmark.question_dir=POPE/output/coco benchmark.image_dir=coco/val2014 \\
        model_path=outputs/mdpo/runs/<time>/model
    vlmalign-eval benchmark=amber benchmark.data_dir=AMBER/data --answers my_amber_answers.json
    vlmalign-eval benchmark=mmhal benchmark.template_file=MMHal-Bench/response_template.json \\
        benchmark.image_dir=MMHal-Bench/images model_path=llava-hf/llava-1.5-7b-hf \\
        benchmark.judge.base_url=https://api.openai.com/v1 benchmark.judge.model=gpt-4-0613
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from vlmalign.errors import ConfigError
from vlmalign.eval.benchmarks.runner import check_images, generate_answers, write_metrics
from vlmalign.utils import resolvers  # noqa: F401  (registers ${pid:} for conf/hydra)
from vlmalign.utils.cli import cli_task
from vlmalign.utils.compose import CONFIG_DIR
from vlmalign.utils.instantiate import build
from vlmalign.utils.reporting import print_metrics_table
from vlmalign.utils.secrets import check_no_literal_secrets

log = logging.getLogger("vlmalign")
# Flags for the two things users pass most, translated to Hydra overrides before Hydra parses argv.
FLAGS = {"--answers": "answers_file", "--model": "model_path"}


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """The whole job for a composed config: answers (generated or read), then metrics; returns them."""
    started = time.perf_counter()
    check_no_literal_secrets(cfg)
    if not cfg.answers_file and not cfg.model_path:
        raise ConfigError("nothing to evaluate: set model_path=<checkpoint or run's model/ dir> to generate answers, "
                          "or answers_file=<file> (--answers FILE) to score existing ones")
    missing = sorted(OmegaConf.missing_keys(cfg.benchmark))
    if missing:  # the benchmark's file paths are ??? keys
        names = [m if m.startswith("benchmark.") else f"benchmark.{m}" for m in missing]
        raise ConfigError(f"benchmark={cfg.benchmark.name} needs these values (set them on the command line, "
                          f"docs/benchmarks.md): {', '.join(f'{n}=...' for n in names)}")
    benchmark = build(cfg.benchmark, "benchmark")  # loads and validates the benchmark's files first
    output_dir = Path(cfg.output_dir)
    questions = benchmark.questions()
    if cfg.limit is not None:
        questions = questions[: int(cfg.limit)]
    if cfg.answers_file:
        source = str(cfg.answers_file)
        answers = benchmark.read_answers(cfg.answers_file, cfg.answers_id_key, cfg.answers_text_key)
        if cfg.limit is not None:
            answers = {q.id: answers[q.id] for q in questions if q.id in answers}
    else:
        from vlmalign.models import load_backbone

        check_images(benchmark, questions)  # seconds, before minutes of model loading
        backbone = load_backbone(str(cfg.model_path), dtype=cfg.model.dtype,
                                 trust_remote_code=cfg.model.trust_remote_code)
        backbone.to(_device(cfg.device))
        answers = generate_answers(benchmark, backbone, output_dir, cfg.batch_size, questions, str(cfg.model_path))
        source = str(output_dir / "answers.jsonl")
    allow_partial = bool(cfg.allow_partial) or cfg.limit is not None
    metrics = benchmark.score(answers, output_dir, allow_partial=allow_partial, source=source)
    metrics[f"{benchmark.name}/time_s"] = time.perf_counter() - started
    path = write_metrics(output_dir, metrics)
    prefix = f"{benchmark.name}/"
    print_metrics_table({benchmark.name: {k.removeprefix(prefix): v for k, v in metrics.items()}},
                        title=f"{benchmark.name}: {source}")
    log.info("metrics written to %s", path)
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
@cli_task("vlmalign-eval")
def _hydra_main(cfg: DictConfig) -> None:
    evaluate(cfg)


def translate_flags(argv: list[str]) -> list[str]:
    """``--answers FILE`` / ``--answers=FILE`` -> ``answers_file=FILE`` (and ``--model``); the rest unchanged."""
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in FLAGS:
            if not eq:
                if i + 1 >= len(argv):
                    raise SystemExit(f"vlmalign-eval: {name} needs a value")
                value, i = argv[i + 1], i + 1
            out.append(f"{FLAGS[name]}={value}")
        else:
            out.append(arg)
        i += 1
    return out


def main() -> None:
    sys.argv = [sys.argv[0], *translate_flags(sys.argv[1:])]
    _hydra_main()


if __name__ == "__main__":
    main()
