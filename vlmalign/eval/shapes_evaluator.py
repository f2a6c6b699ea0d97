"""Exact hallucination evaluation on held-out shapes scenes: CHAIR, Cover and POPE.

Captions are generated greedily and scored against the scene (no learned judge). POPE probes ask
"is there a {color} {shape} in the image ?" with balanced yes/no labels under random, popular and
adversarial negative sampling; a probe shared by several samplings is answered once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from vlmalign.data.shapes import CAPTION_PROMPTS, Scene, WorldSpec, parse_yes_no, render_scene, world_spec
from vlmalign.errors import ConfigError
from vlmalign.eval.hallucination import caption_metrics
from vlmalign.eval.pope import POPE_SAMPLINGS, PopeStatistics, build_pope_probes, pope_metrics
from vlmalign.models.backbone import VisionLanguageBackbone
from vlmalign.models.generation import generate_responses

SCENE_KINDS = ("usual", "counter_prior")


@dataclass
class EvalResult:
    metrics: dict[str, float]
    samples: list[dict]  # one per image: image_id, objects, prompt, response


class ShapesEvaluator:
    def __init__(
        self,
        split: str = "test",
        num_scenes: int = 300,
        world: WorldSpec | dict | None = None,
        scene_kind: str = "usual",
        counter_prior_scenes: int = 0,
        prompt: str = CAPTION_PROMPTS[0],
        max_new_tokens: int = 48,
        batch_size: int = 64,
        pope_samplings: tuple[str, ...] = POPE_SAMPLINGS,
        pope_seed: int = 0,
        pope_max_new_tokens: int = 1,
    ) -> None:
        """``pope_max_new_tokens``: 1 reads a one-word answer, as POPE asks for; a model trained to describe
        the image before answering (``data.existence_answer=describe_first``) needs room for the description
        (e.g. 48): the answer is then the first yes/no word of the reply. ``scene_kind``: ``usual`` scores scenes
        of the training distribution, ``counter_prior`` scenes that break its priors (WorldSpec.scenes); POPE's
        popular and adversarial negatives follow the world's training statistics either way. ``counter_prior_scenes``:
        also caption that many pattern-breaking scenes and report their CHAIR/Cover as ``counter_prior/...``
        (CHAIR's co-occurrence analysis: a model led by the priors hallucinates more where the scene breaks them)."""
        if scene_kind not in SCENE_KINDS:
            raise ConfigError(f"eval.scene_kind={scene_kind!r} is not one of {SCENE_KINDS}")
        self.world = world_spec(world or {}, "eval.world")
        if counter_prior_scenes < 0:
            raise ConfigError(f"eval.counter_prior_scenes={counter_prior_scenes} must be >= 0")
        self.split, self.num_scenes, self.scene_kind = split, num_scenes, scene_kind
        self.counter_prior_scenes = counter_prior_scenes
        self.image_size = self.world.image_size
        self.prompt, self.max_new_tokens, self.batch_size = prompt, max_new_tokens, batch_size
        self.pope_samplings, self.pope_seed = tuple(pope_samplings), pope_seed
        self.pope_max_new_tokens = pope_max_new_tokens

    @cached_property
    def scenes(self) -> list[Scene]:
        return self.world.scenes(self.split, self.num_scenes, counter_prior=self.scene_kind == "counter_prior")

    @cached_property
    def pope_statistics(self) -> PopeStatistics:
        return PopeStatistics.of_world(self.world)

    @cached_property
    def counter_prior(self) -> list[Scene]:
        return self.world.scenes(self.split, self.counter_prior_scenes, counter_prior=True)

    @cached_property
    def images(self) -> dict:
        return {scene.image_id: render_scene(scene, self.image_size) for scene in self.scenes + self.counter_prior}

    def _generate(self, backbone, image_ids: list[str], prompts: list[str], max_new_tokens: int) -> list[str]:
        images = [self.images[i] for i in image_ids]
        return generate_responses(backbone, images, prompts, max_new_tokens, self.batch_size)

    def _captions(self, backbone, scenes: list[Scene]) -> list[str]:
        ids = [scene.image_id for scene in scenes]
        return self._generate(backbone, ids, [self.prompt] * len(ids), self.max_new_tokens)

    def evaluate(self, backbone: VisionLanguageBackbone) -> EvalResult:
        captions = self._captions(backbone, self.scenes)
        metrics = dict(caption_metrics(zip(self.scenes, captions)))
        metrics.update(self._pope(backbone))
        if self.counter_prior:
            scored = caption_metrics(zip(self.counter_prior, self._captions(backbone, self.counter_prior)))
            metrics.update({f"counter_prior/{k}": v for k, v in scored.items()})
        samples = [
            {"image_id": s.image_id, "objects": s.to_dict()["objects"], "prompt": self.prompt, "response": c}
            for s, c in zip(self.scenes, captions)
        ]
        return EvalResult(metrics, samples)

    def _pope(self, backbone) -> dict[str, float]:
        if not self.pope_samplings:
            return {}
        probes = {s: build_pope_probes(self.scenes, s, seed=self.pope_seed, statistics=self.pope_statistics)
                  for s in self.pope_samplings}
        unique = sorted({(p.image_id, p.question) for ps in probes.values() for p in ps})
        replies = self._generate(backbone, [i for i, _ in unique], [q for _, q in unique], self.pope_max_new_tokens)
        answer = {key: parse_yes_no(reply) for key, reply in zip(unique, replies)}
        metrics: dict[str, float] = {}
        for sampling, ps in probes.items():
            result = pope_metrics([p.label for p in ps], [answer[(p.image_id, p.question)] for p in ps])
            metrics.update({f"pope/{sampling}/{k}": v for k, v in result.items()})
        metrics["pope/f1"] = sum(metrics[f"pope/{s}/f1"] for s in probes) / len(probes)
        metrics["pope/accuracy"] = sum(metrics[f"pope/{s}/accuracy"] for s in probes) / len(probes)
        return metrics
