"""Accuracy of a shapes labeler on held-out claims, by kind (object with/without position, count, whole caption).

    python experiments/rlaifv/labeler_accuracy.py MODEL_DIR [--scenes 200] [--first-token]

Questions are drawn as the labeler's training data draws them (``vlmalign.data.shapes_claims``), on the
*val* scenes, balanced true/false; prints JSON.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict

from vlmalign.data.shapes import generate_scenes, render_scene
from vlmalign.data.shapes_claims import verification_question
from vlmalign.models.loader import load_backbone
from vlmalign.pipelines.rlaifv.labelers import ModelLabeler, Question, accepts


def kind(fact: dict) -> str:
    if fact["kind"] == "object":
        return "object_at_position" if fact["position"] else "object_anywhere"
    return fact["kind"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir")
    parser.add_argument("--scenes", type=int, default=200)
    parser.add_argument("--first-token", action="store_true", help="read the verdict at the first reply token")
    args = parser.parse_args()
    labeler = ModelLabeler(load_backbone(args.model_dir), batch_size=128, think_first=not args.first_token)
    questions, truths = [], []
    for i, scene in enumerate(generate_scenes("val", args.scenes)):
        image = render_scene(scene, 64)
        for true in (True, False):
            claim = verification_question(scene, random.Random(f"eval:{i}:{true}"), true, 0.3)
            questions.append(Question(image, claim, scene))
            truths.append(true)
    verdicts = [accepts(y, n) for y, n in labeler.probabilities(questions)]
    by_kind = defaultdict(list)
    for q, truth, verdict in zip(questions, truths, verdicts):
        by_kind[kind(q.claim.fact)].append(truth == verdict)
    result = {"accuracy": sum(t == v for t, v in zip(truths, verdicts)) / len(truths),
              "accept_rate": sum(verdicts) / len(verdicts), "questions": len(truths),
              **{f"accuracy/{k}": sum(v) / len(v) for k, v in sorted(by_kind.items())},
              **{f"count/{k}": len(v) for k, v in sorted(by_kind.items())}}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
