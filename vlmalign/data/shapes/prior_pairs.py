"""Image-only preference pairs: rejected captions that text alone cannot tell from the chosen ones.

mDPO (arXiv 2406.11839, §3) traces DPO's failure on VLMs to *unconditional preference*: when the rejected answer
is worse as text, the policy can learn the preference without looking at the image. The pairs here remove that
route by construction. The chosen caption describes a scene S of the world; the rejected one describes S', the
same scene with one object's (colour, shape) replaced by a draw from the world's own posterior for that object
given all the others (``WorldSpec.identity_posterior``), as fluent and as prior-consistent as the truth, in the
same template, cell and size.

Exchangeability: the pair (S, S') must be as likely as (S', S), otherwise a text-only model could learn which
side tends to be the more typical one. Drawing o' from the posterior restricted to identities absent from S
normalises by Z(S) = P(absent identities | rest) and Z(S') differs, so the proposal is accepted with probability
min(1, Z(S)/Z(S')) (Metropolis-Hastings: the joint is then P(rest) post(o) post(o') min(1/Z(S), 1/Z(S')), the same
both ways) and on rejection a fresh scene is drawn. tests/shapes/test_pair_kinds.py checks the symmetry on counts
and docs/foundation.md measures it with a text-only model.
"""

from __future__ import annotations

import random
from collections import Counter

from vlmalign.data.shapes.preference import PreferencePair
from vlmalign.data.shapes.text import CAPTION_PROMPTS, caption_plan, render_caption
from vlmalign.data.shapes.world import Scene, ShapeObject, WorldSpec

MAX_ATTEMPTS = 1000


def _proposal(scene: Scene, world: WorldSpec, rng: random.Random):
    """(index of the replaced object, its new identity, Z(S), posterior) or None when no object can be swapped."""
    counts = Counter(o.identity for o in scene.objects)
    unique = [i for i, o in enumerate(scene.objects) if counts[o.identity] == 1]  # a twin would stay covered
    if not unique:
        return None
    index = rng.choice(unique)
    posterior = world.identity_posterior(scene, index)
    candidates = [identity for identity in posterior if identity not in counts]
    z_forward = sum(posterior[c] for c in candidates)
    if not candidates or z_forward <= 0:
        return None
    new = rng.choices(candidates, weights=[posterior[c] for c in candidates])[0]
    return index, new, z_forward, posterior


def image_only_pair(world: WorldSpec, split: str, index: int) -> tuple[Scene, PreferencePair]:
    """Pair ``index`` of ``split``: (its chosen scene, the pair); a function of (world, split, index) only."""
    for attempt in range(MAX_ATTEMPTS):
        rng = random.Random(f"{world.seed}:{split}:image_only:{index}:{attempt}")
        scene = world.sample(rng, f"{split}-{world.seed}-{index:06d}")
        proposal = _proposal(scene, world, rng)
        if proposal is None:
            continue
        swapped, (color, shape), z_forward, posterior = proposal
        present = {o.identity for o in scene.objects}
        old = scene.objects[swapped]
        z_backward = sum(p for identity, p in posterior.items()
                         if identity not in (present - {old.identity}) | {(color, shape)})
        if rng.random() >= min(1.0, z_forward / z_backward):
            continue
        prompt = rng.choice(CAPTION_PROMPTS)
        template, objects = caption_plan(scene, rng)
        replacement = ShapeObject(shape, color, old.size, old.position)
        chosen = render_caption(template, objects)
        rejected = render_caption(template, [replacement if o is old else o for o in objects])
        return scene, PreferencePair(prompt, chosen, rejected, ("existence",))
    raise RuntimeError(f"no image-only pair for {split} index {index} in {MAX_ATTEMPTS} scenes")  # pragma: no cover
