"""Per-domain accuracy of models on the shapes world's test scenes, for the BTX study (experiments/btx/README.md).

For each shapes ``data.domain``: greedy answers to that domain's prompts on ``--num-scenes`` test-split scenes.
Question domains (counting, spatial, attribute_existence) score the exact answer (every word); captioning scores
``caption_metrics`` (CHAIR_i, Cover, exact-scene match: every object named, no error). The hallucination probes come
from the evaluator every run uses: POPE accuracy on the random and adversarial splits of the same test scenes.
Prints one JSON object per model, keyed by the path given.

    python experiments/btx/domain_accuracy.py --num-scenes 100 <model dir> [<model dir> ...]
"""

from __future__ import annotations

import argparse
import json
import sys

from omegaconf import OmegaConf

from vlmalign.data.shapes import render_scene, world_spec
from vlmalign.data.shapes_sft import DOMAINS, ShapesSFTDataset
from vlmalign.eval.hallucination import caption_metrics
from vlmalign.eval.shapes_evaluator import ShapesEvaluator
from vlmalign.models import load_backbone
from vlmalign.models.generation import generate_responses
from vlmalign.utils.compose import compose_train


def domain_scores(model_dir: str, num_scenes: int) -> dict[str, float]:
    backbone = load_backbone(model_dir).eval()
    world = world_spec(OmegaConf.to_container(compose_train([]).world, resolve=True), "world")  # training's world
    scores: dict[str, float] = {}
    for domain in DOMAINS:
        dataset = ShapesSFTDataset(encoder=None, split="test", num_scenes=num_scenes, world=world, domain=domain)
        examples = [dataset.text_for(i) for i in range(0, len(dataset), 2)]  # one example per scene
        images = [render_scene(scene, world.image_size) for scene, _, _ in examples]
        answers = generate_responses(backbone, images, [prompt for _, prompt, _ in examples],
                                     max_new_tokens=48 if domain == "captioning" else 4)
        if domain == "captioning":
            metrics = caption_metrics([(scene, text) for (scene, _, _), text in zip(examples, answers)])
            scores.update({f"captioning/{k}": metrics[k] for k in ("chair_i", "cover", "exact_match")})
        else:
            # the whole answer, word for word: positions are one or two words ("top left")
            right = [text.split() == truth.split() for (_, _, truth), text in zip(examples, answers)]
            scores[f"{domain}/accuracy"] = sum(right) / len(right)
    pope = ShapesEvaluator(split="test", num_scenes=num_scenes, world=world, pope_samplings=("random", "adversarial"))
    metrics = pope.evaluate(backbone).metrics
    scores.update({key: metrics[key] for key in ("pope/random/accuracy", "pope/adversarial/accuracy")})
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--num-scenes", type=int, default=100)
    args = parser.parse_args()
    for model in args.models:
        print(json.dumps({"model": model, **domain_scores(model, args.num_scenes)}))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
