"""Training data for the shapes labeler VLM of RLAIF-V: yes/no verification of claims about a scene.

Each scene gives one true and one false question (balanced labels), drawn from the claims RLAIF-V's
labeler is asked about (``vlmalign.data.shapes.claims``):

- an object claim ("is there a large red circle at the top left ?") with some attributes left out, as
  sampled captions leave them out; a false one changes one attribute of a real object (mostly the
  shape, the policy's usual error) or names an absent (colour, shape);
- a count claim ("are there two objects ?");
- with probability ``whole_response_fraction``, a whole caption asked back as one question (faithful,
  or with one injected error): what the self-rewarding baseline asks the same labeler.

The answer looks before it judges: "at the top left there is a large red square . no". A bare yes/no
as the first reply token stayed at chance (NLL ln 2 after 300 steps, like the position-free existence
questions of docs/foundation.md): the captions-only base never reads the image at its first reply
position. Describing the claimed cell (or, for a claim without a position, the whole scene) is the
captioning skill it has, and the verdict then compares two texts. ``ModelLabeler(think_first=True)``
reads P(yes), P(no) at the verdict token after its own greedy rationale.
"""

from __future__ import annotations

import random

from vlmalign.data.shapes import COLORS, POSITIONS, SHAPES, SIZES, Scene, describe, make_preference_pair
from vlmalign.data.shapes.claims import Claim, claim_holds, count_claim, object_claim, whole_response_claim
from vlmalign.data.shapes.text import NUMBERS
from vlmalign.data.shapes_sft import ShapesSFTDataset

# Which attribute a false object claim gets wrong: mostly the shape, the error the captions-only base makes.
FALSE_CLAIM_MIX = {"shape": 0.4, "color": 0.2, "size": 0.1, "position": 0.15, "absent": 0.15}
WHOLE_RESPONSE_ERRORS = {"shape": 0.5, "attribute": 0.15, "spatial": 0.15, "existence": 0.1, "count": 0.1}
VALUES = {"shape": SHAPES, "color": COLORS, "size": SIZES, "position": POSITIONS}
KEEP = {"color": 0.9, "size": 0.7, "position": 0.9}  # how often a claim states each attribute
COUNT_FRACTION = 0.1


def _object_claim(scene: Scene, rng: random.Random, true: bool) -> Claim:
    obj = rng.choice(scene.objects)
    fields = {"shape": obj.shape, **{k: getattr(obj, k) if rng.random() < p else None for k, p in KEEP.items()}}
    if not true:
        for _ in range(50):  # a change that no object in the scene makes true
            kind = rng.choices(list(FALSE_CLAIM_MIX), list(FALSE_CLAIM_MIX.values()))[0]
            changed = dict(fields)
            if kind == "absent":
                changed.update(color=rng.choice(COLORS), shape=rng.choice(SHAPES))
            else:
                changed[kind] = rng.choice([v for v in VALUES[kind] if v != getattr(obj, kind)])
            claim = object_claim(**changed)
            if not claim_holds(claim.fact, scene):
                return claim
        raise RuntimeError(f"scene {scene.image_id}: no false claim found")  # cannot happen with <= 9 objects
    return object_claim(**fields)


def verification_question(scene: Scene, rng: random.Random, true: bool, whole_response_fraction: float) -> Claim:
    """A claim about ``scene`` that is ``true`` or false, as the labeler will be asked it."""
    draw = rng.random()
    if draw < whole_response_fraction:
        caption = describe(scene, rng) if true else \
            make_preference_pair(scene, rng, WHOLE_RESPONSE_ERRORS, plausibility=1.0).rejected
        return whole_response_claim(caption)
    if draw < whole_response_fraction + COUNT_FRACTION * (1 - whole_response_fraction):
        count = len(scene.objects)
        return count_claim(count if true else rng.choice([n for n in range(1, 5) if n != count]))
    return _object_claim(scene, rng, true)


def rationale(claim: Claim, scene: Scene, rng: random.Random) -> str:
    """What the labeler says it sees before its verdict: the claimed cell, the count, or the whole scene."""
    fact = claim.fact
    if fact["kind"] == "object" and fact["position"]:
        here = [o for o in scene.objects if o.position == fact["position"]]
        if not here:
            return f"at the {fact['position']} there are zero objects ."
        obj = here[0]
        return f"at the {obj.position} there is a {obj.size} {obj.color} {obj.shape} ."
    if fact["kind"] == "count":
        count = len(scene.objects)
        return f"there {'is' if count == 1 else 'are'} {NUMBERS[count]} object{'' if count == 1 else 's'} ."
    return describe(scene, rng)


class ShapesClaimsDataset(ShapesSFTDataset):
    """Scene i → example 2i asks a true claim ("yes"), example 2i + 1 a false one ("no")."""

    def __init__(self, *args, whole_response_fraction: float = 0.5, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not 0 <= whole_response_fraction <= 1:
            raise ValueError(f"whole_response_fraction={whole_response_fraction} must be in [0, 1]")
        self.whole_response_fraction = whole_response_fraction

    def text_for(self, index: int) -> tuple[Scene, str, str]:
        scene = self.scenes[index // 2]
        true = index % 2 == 0
        rng = random.Random(f"{self.world.seed}:{self.split}:claims:{index}")
        claim = verification_question(scene, rng, true, self.whole_response_fraction)
        return scene, claim.question, f"{rationale(claim, scene, rng)} {'yes' if true else 'no'}"


def claims_datamodule(processor, views: tuple[str, ...] = ("chosen",), whole_response_fraction: float = 0.5,
                      **shapes_kwargs):
    """``data=shapes_claims``: the shapes datamodule with the claim-verification examples as its splits."""
    from vlmalign.data.datamodule import ShapesDataModule

    shapes_kwargs.pop("task", None)  # always SFT examples (one labelled answer each)
    module = ShapesDataModule(processor, views, task="sft", **shapes_kwargs)
    for split in ("train", "val"):  # the same scenes as the SFT splits just built, asked about instead of captioned
        scenes = getattr(module, f"{split}_set")
        setattr(module, f"{split}_set", ShapesClaimsDataset(
            module.encoder, split, scenes.num_scenes, scenes.world, whole_response_fraction=whole_response_fraction))
    module._description.update(task="claims", whole_response_fraction=whole_response_fraction)
    return module
