"""Caption sources of Synth² (arXiv 2403.07750): the text half of synthetic (caption, image embedding) pairs.

Synth² (§3.1, caption generation) has an LLM write captions from prompts that list *concepts*, so the
synthetic data covers many concepts, each about equally often (balance), and the captions differ from
each other (diversity); a text-to-image model then turns each caption into an image embedding. Two
sources here, both returning ``SyntheticCaption``:

- ``ShapesCaptionSource``: the shapes world's stand-in for the LLM. Captions are descriptions of
  *sampled* scenes (never rendered: pixels are exactly what Synth² skips), written with the project's
  caption templates. ``balance`` and ``concept_fraction`` are the paper's balance and semantic
  diversity knobs, which matter for ablations.
- ``LLMCaptionSource``: the paper's recipe on real data: any completion backend of
  ``vlmalign.negatives.llm``, prompted with balanced concept groups, each reply cached on disk and
  validated item by item; every rejected item is counted by reason, never dropped silently.
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from vlmalign.data.shapes.text import TEMPLATES, render_caption
from vlmalign.data.shapes.world import COLORS, POSITIONS, SHAPES, SIZES, Scene, ShapeObject
from vlmalign.errors import DataError
from vlmalign.llm.backends import CompletionBackend
from vlmalign.llm.cache import CompletionCache
from vlmalign.llm.parse import RejectedSample, load_json_list
from vlmalign.utils.files import fingerprint

log = logging.getLogger(__name__)

CATEGORIES = tuple((color, shape) for color in COLORS for shape in SHAPES)  # what CHAIR/POPE count as one object
BALANCES = ("uniform", "natural")


@dataclass(frozen=True)
class SyntheticCaption:
    caption_id: str
    text: str
    scene: Scene | None = None  # shapes: the sampled scene the caption describes (never rendered); LLM: None


def _least_used(rng: random.Random, options: Sequence, counts: Counter):
    """The option used least so far (random among ties), counted as used once more.

    Always taking a least-used option keeps max - min of the counts <= 1 (if it was before, incrementing
    a minimum cannot make it more). Picking k distinct options this way takes k least-used ones, which
    keeps the same bound: that is why positions, distinct within a scene, stay within +-1 too.
    """
    fewest = min(counts[o] for o in options)
    choice = rng.choice([o for o in options if counts[o] == fewest])
    counts[choice] += 1
    return choice


class ShapesCaptionSource:
    """Captions of sampled shapes-world scenes, with Synth²'s balance and semantic diversity knobs.

    ``balance="uniform"`` draws each object's (colour, shape) category, size and position least-used-first
    over all captions so far, so over any prefix every allowed value appears equally often up to +-1;
    ``"natural"`` draws them i.i.d. uniformly, as the world's own sampler does. ``concept_fraction`` keeps
    the first round(fraction x 20) categories of a seeded permutation (fewer concepts: less diversity).
    Generation is sequential from one seeded RNG, so ``captions(k)`` is the first k of ``captions(n)``.
    Scene ids are ``synth-{seed}-{i:06d}``, a namespace no train/val/test split uses.
    """

    def __init__(self, seed: int = 0, balance: str = "uniform", concept_fraction: float = 1.0,
                 min_objects: int = 1, max_objects: int = 3, templates: list[str] | None = None) -> None:
        if balance not in BALANCES:
            raise ValueError(f"balance={balance!r} is not one of {BALANCES}")
        if not isinstance(concept_fraction, (int, float)) or not 0 < concept_fraction <= 1:
            raise ValueError(f"concept_fraction={concept_fraction!r} must be in (0, 1] (the share of the "
                             f"{len(CATEGORIES)} colour-shape categories used)")
        if not 1 <= min_objects <= max_objects <= len(POSITIONS):
            raise ValueError(f"min_objects={min_objects}, max_objects={max_objects}: need 1 <= min_objects <= "
                             f"max_objects <= {len(POSITIONS)} (one object per cell of the 3x3 grid)")
        templates = list(TEMPLATES) if templates is None else list(templates)
        unknown = [t for t in templates if t not in TEMPLATES]
        if unknown or not templates:
            raise ValueError(f"templates={templates!r}: {'unknown ' + repr(unknown) if unknown else 'empty'}; "
                             f"allowed: a non-empty subset of {TEMPLATES}")
        self.seed, self.balance, self.concept_fraction = seed, balance, float(concept_fraction)
        self.min_objects, self.max_objects, self.templates = min_objects, max_objects, tuple(templates)
        permutation = list(CATEGORIES)
        random.Random(f"synth2-concepts:{seed}").shuffle(permutation)
        self.categories = tuple(permutation[: max(1, round(self.concept_fraction * len(CATEGORIES)))])

    @property
    def identity(self) -> dict:
        return {"source": "shapes", "version": 1, "seed": self.seed, "balance": self.balance,
                "concept_fraction": self.concept_fraction, "min_objects": self.min_objects,
                "max_objects": self.max_objects, "templates": list(self.templates)}

    def captions(self, num: int) -> list[SyntheticCaption]:
        if num < 0:
            raise ValueError(f"num={num} must be >= 0")
        rng = random.Random(f"synth2-captions:{self.seed}")
        used: dict[str, Counter] = {"category": Counter(), "size": Counter(), "position": Counter()}
        natural = self.balance == "natural"
        out = []
        for i in range(num):
            count = rng.randint(self.min_objects, self.max_objects)
            if natural:
                cells = rng.sample(POSITIONS, count)
            else:
                cells = []
                for _ in range(count):
                    cells.append(_least_used(rng, [p for p in POSITIONS if p not in cells], used["position"]))
            objects = []
            for cell in sorted(cells, key=POSITIONS.index):  # reading order, like sample_scene
                if natural:
                    (color, shape), size = rng.choice(self.categories), rng.choice(SIZES)
                else:
                    color, shape = _least_used(rng, self.categories, used["category"])
                    size = _least_used(rng, SIZES, used["size"])
                objects.append(ShapeObject(shape, color, size, cell))
            scene = Scene(f"synth-{self.seed}-{i:06d}", tuple(objects))
            out.append(SyntheticCaption(scene.image_id, render_caption(rng.choice(self.templates), scene.objects),
                                        scene))
        return out


PROMPT = """Write {count} diverse, concrete image captions, one sentence each, like a person describing a photo.
Every caption must mention: {concepts}.
Vary the setting, the other objects, their attributes and the phrasing; at most {max_words} words per caption.
This is request {request}; do not repeat captions of other requests.
Answer with a JSON list of strings only: ["...", "..."]"""

_HINTS = {
    "not_a_list": "use an instruction-following model or check its replies (the warnings show them)",
    "bad_item": "use an instruction-following model or check its replies (the warnings show them)",
    "empty": "check the backend's replies (the warnings show them)",
    "too_long": "raise max_words",
    "off_concept": "use concept words the model will write verbatim",
    "duplicate": "sample with temperature > 0 or use more concepts",
}


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


class LLMCaptionSource:
    """Synth²'s caption generation (§3.1): an LLM prompted with concept lists, replies validated and cached.

    Prompt k asks for ``captions_per_prompt`` captions mentioning its ``concepts_per_prompt`` concepts,
    taken in turn from seeded shuffles of ``concepts`` (a new shuffle per pass), so after any number of
    prompts every concept was asked for equally often up to +-1. An item is kept if it is a non-empty
    string of at most ``max_words`` words that mentions at least one of its prompt's concepts
    (case-insensitive substring) and is not a duplicate (case/whitespace-insensitive) of a kept one;
    otherwise it is counted in ``rejected`` under its reason (see ``_HINTS``; a reply that is not a JSON
    list counts once as ``not_a_list``). ``rejected`` holds the counts of the latest ``captions`` call.
    """

    def __init__(self, backend: CompletionBackend, concepts: list[str], cache_dir: str | Path | None = None,
                 seed: int = 0, captions_per_prompt: int = 8, concepts_per_prompt: int = 2, max_words: int = 60,
                 max_prompts: int | None = None) -> None:
        if isinstance(concepts, str) or not concepts or not all(isinstance(c, str) and c.strip() for c in concepts):
            raise ValueError(f"concepts={concepts!r} must be a non-empty list of non-empty strings")
        if len({c.strip().lower() for c in concepts}) != len(concepts):
            raise ValueError(f"concepts={concepts!r} has duplicates (case-insensitive)")
        if not 1 <= concepts_per_prompt <= len(concepts):
            raise ValueError(f"concepts_per_prompt={concepts_per_prompt} must be in 1..{len(concepts)} (len(concepts))")
        for name, value in (("captions_per_prompt", captions_per_prompt), ("max_words", max_words),
                            ("max_prompts", 1 if max_prompts is None else max_prompts)):
            if value < 1:
                raise ValueError(f"{name}={value} must be >= 1")
        self.backend, self.concepts, self.seed = backend, [c.strip() for c in concepts], seed
        self.captions_per_prompt, self.concepts_per_prompt = captions_per_prompt, concepts_per_prompt
        self.max_words, self.max_prompts = max_words, max_prompts
        self.cache = CompletionCache(cache_dir) if cache_dir is not None else None
        self.rejected: Counter[str] = Counter()

    @property
    def identity(self) -> dict:
        return {"source": "llm", "version": 1, "backend": self.backend.identity, "prompt": fingerprint(PROMPT),
                "concepts": list(self.concepts), "seed": self.seed, "captions_per_prompt": self.captions_per_prompt,
                "concepts_per_prompt": self.concepts_per_prompt, "max_words": self.max_words,
                "max_prompts": self.max_prompts}

    def concept_groups(self) -> Iterator[tuple[str, ...]]:
        """The concepts of prompt 0, 1, ...: consecutive items of seeded shuffles, no repeat within a prompt.

        A group straddling two passes would repeat a concept if the new shuffle began with it; moving the
        group's concepts to the end of that shuffle avoids it while each pass still uses each concept once.
        """
        rng = random.Random(f"synth2-llm-concepts:{self.seed}")
        pending: list[str] = []
        group: list[str] = []
        while True:
            if not pending:
                order = list(self.concepts)
                rng.shuffle(order)
                pending = [c for c in order if c not in group] + [c for c in order if c in group]
            group.append(pending.pop(0))
            if len(group) == self.concepts_per_prompt:
                yield tuple(group)
                group = []

    def _reject(self, reason: str, request: int, item: object) -> None:
        self.rejected[reason] += 1
        log.warning("Synth² LLM captions: request %d: rejected (%s): %.160r", request, reason, item)

    def _problem(self, item: object, concepts: tuple[str, ...], seen: set[str]) -> str | None:
        if not isinstance(item, str):
            return "bad_item"
        if not item.strip():
            return "empty"
        if len(item.split()) > self.max_words:
            return "too_long"
        if not any(c.lower() in item.lower() for c in concepts):
            return "off_concept"
        return "duplicate" if _normal(item) in seen else None

    def captions(self, num: int) -> list[SyntheticCaption]:
        """The first ``num`` accepted captions; DataError if ``max_prompts`` prompts do not yield them."""
        if num < 0:
            raise ValueError(f"num={num} must be >= 0")
        self.rejected.clear()
        max_prompts = self.max_prompts
        if max_prompts is None:
            max_prompts = 4 * math.ceil(num / self.captions_per_prompt)
        accepted: list[SyntheticCaption] = []
        seen: set[str] = set()
        groups = self.concept_groups()
        sent = 0
        while len(accepted) < num and sent < max_prompts:
            concepts = next(groups)
            prompt = PROMPT.format(count=self.captions_per_prompt, concepts=", ".join(concepts),
                                   max_words=self.max_words, request=sent)
            sent += 1
            # BackendError (an outage) propagates: it is not the model's answer, so nothing is rejected.
            if self.cache is None:
                reply = self.backend.complete(prompt)
            else:
                reply = self.cache.complete(self.backend, prompt)[0]
            try:
                items = load_json_list(reply)
            except RejectedSample:
                items = None
            if not isinstance(items, list):
                self._reject("not_a_list", sent - 1, reply)
                continue
            for item in items:
                problem = self._problem(item, concepts, seen)
                if problem:
                    self._reject(problem, sent - 1, item)
                    continue
                seen.add(_normal(item))
                accepted.append(SyntheticCaption(f"llm-{self.seed}-{len(accepted):06d}", item.strip()))
                if len(accepted) == num:
                    break
        if len(accepted) < num:
            hints = "; ".join(f"{reason}: {_HINTS[reason]}" for reason, _ in self.rejected.most_common())
            raise DataError(
                f"LLM caption source: only {len(accepted)} of {num} captions were accepted after {sent} prompts "
                f"(max_prompts={max_prompts}); rejected: {dict(self.rejected)}. Raise max_prompts or ask for fewer "
                f"captions{'; ' + hints if hints else ''}."
            )
        return accepted


def caption_source_stats(captions: list[SyntheticCaption]) -> dict:
    """How balanced and diverse a caption set is: Synth²'s two knobs, measured (category_balance 1.0 = even)."""
    stats: dict = {"captions": len(captions), "distinct_texts": len({_normal(c.text) for c in captions})}
    scenes = [c.scene for c in captions if c.scene is not None]
    if scenes:
        objects = [o for s in scenes for o in s.objects]
        categories = Counter(f"{o.color} {o.shape}" for o in objects)
        stats.update(
            categories=dict(sorted(categories.items())),
            sizes=dict(sorted(Counter(o.size for o in objects).items())),
            positions=dict(sorted(Counter(o.position for o in objects).items())),
            categories_used=len(categories),
            category_balance=max(categories.values()) / min(categories.values()),
            mean_objects=len(objects) / len(scenes),
        )
    return stats
