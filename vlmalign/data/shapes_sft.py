"""SFT examples from the shapes world: each scene gives two examples drawn from a task mixture.

Captions teach description (scored by CHAIR/Cover); existence questions ("is there a red circle in
the image ?") teach the yes/no answering that POPE probes; attribute, count and spatial questions
add grounding signal. ``existence_answer=describe_first`` writes a faithful caption before the yes/no word, so
the answer could be read off the model's own description instead of the image (docs/foundation.md measures it:
the captions improve, the answer stays at chance). Everything is a function of (world, split, index), so
any example can be regenerated exactly, in any process.
"""

from __future__ import annotations

import random
from functools import cached_property

from torch.utils.data import Dataset

from vlmalign.data.encoding import EncodedExample, SequenceEncoder
from vlmalign.data.shapes import CAPTION_PROMPTS, Scene, WorldSpec, describe, questions, render_scene
from vlmalign.data.shapes.text import existence_question, one_attribute_existence
from vlmalign.data.shapes.world import COLORS, SHAPES

OTHER_QUESTIONS = ("attribute", "count", "spatial")
EXISTENCE_ANSWERS = ("direct", "describe_first")
SHARES = ("existence_single_object", "existence_empty_scenes", "existence_one_attribute", "existence_likely_negatives",
          "existence_confusable_negatives")
# Branch-Train-MiX's domains (arXiv 2403.07816, §2.1: one expert per domain): ``domain`` restricts every example to
# one task; None keeps the mixture. The value is the question kinds asked, or None for captions.
DOMAINS = {"captioning": None, "counting": ("count",), "spatial": ("spatial",),
           "attribute_existence": ("attribute", "existence")}


def mixture_problems(caption_fraction: float = 0.75, existence_fraction: float = 0.25, existence_answer: str = "direct",
                     domain: str | None = None, **shares: float) -> list[str]:
    """What is wrong with a task mixture (empty when it can be drawn); the dataset and the config check share it."""
    def number(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    problems = []
    if not (number(caption_fraction) and number(existence_fraction) and 0 <= caption_fraction
            and 0 <= existence_fraction and caption_fraction + existence_fraction <= 1):
        problems.append(f"caption_fraction={caption_fraction!r} and existence_fraction={existence_fraction!r} must "
                        "be numbers >= 0 that sum to at most 1 (the rest are other questions)")
    problems += [f"{name}={share!r} must be a share in [0, 1]" for name, share in shares.items()
                 if not (number(share) and 0 <= share <= 1)]
    if existence_answer not in EXISTENCE_ANSWERS:
        problems.append(f"existence_answer={existence_answer!r} is not one of {EXISTENCE_ANSWERS}")
    if domain is not None and domain not in DOMAINS:
        problems.append(f"domain={domain!r} is not one of {sorted(DOMAINS)} (or null: the task mixture)")
    return problems


class ShapesSFTDataset(Dataset):
    def __init__(
        self,
        encoder: SequenceEncoder,
        split: str,
        num_scenes: int,
        world: WorldSpec,
        caption_fraction: float = 0.75,
        existence_fraction: float = 0.25,
        existence_answer: str = "direct",
        existence_single_object: float = 0.0,
        existence_empty_scenes: float = 0.0,
        existence_one_attribute: float = 0.0,
        existence_likely_negatives: float = 0.0,
        existence_confusable_negatives: float = 0.5,
        domain: str | None = None,
    ) -> None:
        problems = mixture_problems(caption_fraction=caption_fraction, existence_fraction=existence_fraction,
                                    existence_answer=existence_answer, domain=domain,
                                    existence_single_object=existence_single_object,
                                    existence_empty_scenes=existence_empty_scenes,
                                    existence_one_attribute=existence_one_attribute,
                                    existence_likely_negatives=existence_likely_negatives,
                                    existence_confusable_negatives=existence_confusable_negatives)
        if problems:
            raise ValueError("; ".join(problems))
        self.caption_fraction, self.existence_fraction = caption_fraction, existence_fraction
        self.existence_answer, self.existence_single_object = existence_answer, existence_single_object
        self.existence_empty_scenes, self.existence_one_attribute = existence_empty_scenes, existence_one_attribute
        self.existence_likely_negatives = existence_likely_negatives
        self.existence_confusable_negatives = existence_confusable_negatives
        self.domain = domain
        self.encoder = encoder
        self.split = split
        self.num_scenes = num_scenes
        self.world = world

    @cached_property
    def scenes(self) -> list[Scene]:
        return self.world.scenes(self.split, self.num_scenes)

    def __len__(self) -> int:
        return 2 * self.num_scenes

    def text_for(self, index: int) -> tuple[Scene, str, str]:
        """(scene, prompt, response) of example ``index``, the task drawn from the mixture."""
        scene = self.scenes[index // 2]
        rng = random.Random(f"{self.world.seed}:{self.split}:sft:{index}")
        draw = rng.random()
        if self.domain is not None:
            return self._domain_text(scene, rng)
        if draw < self.caption_fraction:
            return scene, rng.choice(CAPTION_PROMPTS), describe(scene, rng)
        kinds = ("existence",) if draw < self.caption_fraction + self.existence_fraction else OTHER_QUESTIONS
        if kinds == ("existence",) and self.existence_empty_scenes and rng.random() < self.existence_empty_scenes:
            # An empty canvas, asked about any pair: "no". The only existence questions whose answer the image alone
            # decides, so the answer position gets a first-order gradient towards the image (objects -> "yes",
            # empty cells -> "no") before it must match the question against the objects (docs/foundation.md,
            # "World v3.1").
            empty = Scene(f"{scene.image_id}/empty", ())
            return empty, existence_question(rng.choice(COLORS), rng.choice(SHAPES)), "no"
        if kinds == ("existence",) and self.existence_one_attribute and rng.random() < self.existence_one_attribute:
            # Shape alone or colour alone: each attribute's match must be learned on its own (the world v3 base
            # matched colours only and answered "yes" to a red circle beside a red square; docs/foundation.md).
            return scene, *one_attribute_existence(scene, rng)
        if kinds == ("existence",) and self.existence_single_object and rng.random() < self.existence_single_object:
            # One of the scene's objects alone: the answer is then a match of the question against the only object,
            # which needs no search over the image; it gives the answer position a gradient to start on before
            # it must find one object among several (docs/foundation.md, "World v3").
            scene = Scene(f"{scene.image_id}/single", (rng.choice(scene.objects),))
        negatives = dict(likely_absent=self.world.expected_beside(scene),
                         likely_negatives=self.existence_likely_negatives,
                         confusable_negatives=self.existence_confusable_negatives)
        kind, question, answer = rng.choice(questions(scene, rng, kinds, **negatives))
        if kind == "existence" and self.existence_answer == "describe_first":
            answer = f"{describe(scene, rng)} {answer} ."
        return scene, question, answer

    def _domain_text(self, scene: Scene, rng: random.Random) -> tuple[Scene, str, str]:
        """An example of ``self.domain`` alone. A spatial question needs an object whose (colour, shape) is unique
        in the scene; in the rare scene without one (every object the same kind) it asks for the count instead."""
        kinds = DOMAINS[self.domain]
        if kinds is None:
            return scene, rng.choice(CAPTION_PROMPTS), describe(scene, rng)
        asked = questions(scene, rng, kinds, likely_absent=self.world.expected_beside(scene),
                          likely_negatives=self.existence_likely_negatives,
                          confusable_negatives=self.existence_confusable_negatives)
        _, question, answer = rng.choice(asked or questions(scene, rng, ("count",)))
        return scene, question, answer

    def text_length(self, index: int) -> int:
        _, prompt, response = self.text_for(index)
        return self.encoder.text_length(prompt, [response])

    def __getitem__(self, index: int) -> EncodedExample:
        scene, prompt, response = self.text_for(index)
        image = render_scene(scene, self.world.image_size)
        return self.encoder.encode(f"{scene.image_id}#{index % 2}", image, prompt, {"chosen": response})
