"""Preference pairs with exact ground truth: chosen = a faithful caption, rejected = the same caption
with injected errors of a chosen type mix.

Error types (``ERROR_TYPES``; "shape" was added after the four types of nSFT's vision error codebook
and stays last so indices into the tuple never change):

- ``existence``: add an object whose (colour, shape) is absent from the scene, or turn one object
  into such a pair (a CHAIR hallucination either way);
- ``attribute``: change one object's size (a size error) or its colour to one that makes an absent
  (colour, shape) pair (a hallucination);
- ``count``: state a wrong total count; a template that states no count is switched to its counting
  twin (list -> count_list, shows -> count_shows, position_first -> count_list);
- ``spatial``: move one object to a free cell (or, when none is free, swap two objects' cells);
- ``shape``: change one object's shape to one making an absent (colour, shape) pair (a shape swap,
  the error a tiny model of this world makes most).

**Plausibility** (mDPO's *unconditional preference* problem: if the rejected text is worse *as text*,
a model can learn the preference without looking at the image). Each pair draws once: with probability
``plausibility`` every error is written as a fluent, self-consistent description of a *possible*
scene (distinct cells, a stated count equal to the number of listed objects, one size and one
colour per object, objects kept in reading order when the chosen caption is), so only the image
tells it is wrong; a count error then adds or drops a listed object so the caption stays
consistent. Otherwise every error also leaves a tell that ``text_tells`` finds from the text alone:

- existence: the added object is put in a cell another listed object already occupies (when nine
  objects are listed already, an object is replaced instead and gets the generic tell);
- attribute: the phrase keeps the true word before the wrong one ("a large small red circle",
  "a red green circle"; the parser reads the last word, so the wrong one is what gets scored);
- count: the stated count contradicts the number of listed objects;
- spatial: the object is moved onto another listed object's cell (a lone object gets the generic tell);
- shape (and lone-object spatial): the generic tell, a conflicting size word before the true one
  ("a small large ..."), which changes nothing the scorer reads.

Every applied error adds its own defect that ``score_caption`` sees (a wrong claim counted in
``error_count``, or an object left uncovered by a dropped phrase): edits go to distinct, untouched
objects of the scene, moves go to cells free in both the caption and the scene, additions are new
phrases. If a drawn type cannot be applied that way (e.g. a one-object scene asked for three
spatial errors), the first applicable type in ``ERROR_TYPES`` is used instead (overlapping edits are
allowed only if no type applies otherwise); ``PreferencePair.errors`` records what was injected.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from vlmalign.data.shapes.parse import parse_count, parse_mention_words
from vlmalign.data.shapes.text import (
    CAPTION_PROMPTS,
    COUNT_TEMPLATES,
    COUNTED_TEMPLATE,
    NUMBERS,
    Phrase,
    caption_plan,
    render_caption,
)
from vlmalign.data.shapes.world import COLORS, POSITIONS, SHAPES, SIZES, Scene

ERROR_TYPES = ("existence", "attribute", "count", "spatial", "shape")


@dataclass(frozen=True)
class PreferencePair:
    prompt: str
    chosen: str
    rejected: str
    errors: tuple[str, ...]  # error types injected, in the order they were applied


@dataclass
class _Claim:
    """One object as the rejected caption states it; ``decoy_*`` is a conflicting word said first."""

    shape: str
    color: str
    size: str
    position: str
    changed: set[str] = field(default_factory=set)  # fields edited so far ("new" for an added object)
    decoy_color: str | None = None
    decoy_size: str | None = None

    @property
    def identity(self) -> tuple[str, str]:
        return (self.color, self.shape)

    def phrase(self) -> Phrase:
        colors = (self.color,) if self.decoy_color is None else (self.decoy_color, self.color)
        sizes = (self.size,) if self.decoy_size is None else (self.decoy_size, self.size)
        return Phrase(self.shape, self.position, colors, sizes)


@dataclass
class _Draft:
    scene: Scene
    template: str
    claims: list[_Claim]
    rng: random.Random
    plausible: bool
    count_lie: int | None = None  # direction (+1/-1) of a stated count that contradicts the listed objects
    strict: bool = True  # edit only untouched objects the scene has, so every error is scored on its own

    @property
    def present(self) -> set[tuple[str, str]]:
        return {o.identity for o in self.scene.objects}

    def absent_pairs(self, color: str | None = None, shape: str | None = None) -> list[tuple[str, str]]:
        return [(c, s) for c in COLORS for s in SHAPES
                if (c, s) not in self.present and color in (None, c) and shape in (None, s)]

    def free_cells(self) -> list[str]:
        taken = {c.position for c in self.claims} | {o.position for o in self.scene.objects}
        return [p for p in POSITIONS if p not in taken]

    def pick(self, ok: Callable[[_Claim], bool], untouched_field: str) -> _Claim | None:
        """A claim satisfying ``ok``: an unedited one the scene has; when not ``strict`` (every error type
        failed strictly), one whose ``untouched_field`` is unedited (overlapping errors, still no undoing)."""
        tiers = [lambda c: not c.changed and c.identity in self.present]
        if not self.strict:
            tiers += [lambda c: untouched_field not in c.changed and c.identity in self.present,
                      lambda c: untouched_field not in c.changed]
        for tier in tiers:
            pool = [c for c in self.claims if ok(c) and tier(c)]
            if pool:
                return self.rng.choice(pool)
        return None

    def generic_tell(self, claim: _Claim) -> None:
        if claim.decoy_size is None:
            claim.decoy_size = next(s for s in SIZES if s != claim.size)


def _existence(d: _Draft) -> bool:
    # A tenth object would need a count word we do not have; a plausible one needs a free cell.
    can_add = len(d.claims) < len(POSITIONS) and (not d.plausible or bool(d.free_cells()))
    target = d.pick(lambda c: True, "shape")
    if can_add and (target is None or not d.plausible or d.rng.random() < 0.5):
        color, shape = d.rng.choice(d.absent_pairs())
        cell = d.rng.choice(d.free_cells() if d.plausible else [c.position for c in d.claims])
        d.claims.append(_Claim(shape, color, d.rng.choice(SIZES), cell, {"new"}))
        return True
    if target is None:
        return False
    target.color, target.shape = d.rng.choice(d.absent_pairs())
    target.changed |= {"color", "shape"}
    if not d.plausible:
        d.generic_tell(target)
    return True


def _attribute(d: _Draft) -> bool:
    def recolorable(c: _Claim) -> bool:
        return bool(d.absent_pairs(shape=c.shape))

    kinds = ["size", "color"]
    d.rng.shuffle(kinds)
    for kind in kinds:
        target = d.pick(recolorable if kind == "color" else (lambda c: "size" not in c.changed), kind)
        if target is None:
            continue
        old = getattr(target, kind)
        if kind == "size":
            target.size = next(s for s in SIZES if s != old)
        else:
            target.color = d.rng.choice(d.absent_pairs(shape=target.shape))[0]
        target.changed.add(kind)
        if not d.plausible:  # "a large small circle": the true word first, the wrong (scored) one last
            setattr(target, f"decoy_{kind}", old)
        return True
    return False


def _count(d: _Draft) -> bool:
    """Runs after every other error of the pair, so the final number of listed objects is known."""
    n = len(d.scene.objects)
    if not d.plausible:
        if d.count_lie is not None:
            return False
        d.count_lie = d.rng.choice((-1, 1))
    else:
        options = []
        droppable = [c for c in d.claims if not c.changed]
        if len(d.claims) >= 2 and droppable and len(d.claims) - 1 != n:
            options.append("drop")
        if d.free_cells() and len(d.claims) + 1 != n:
            options.append("add")
        if not options:
            return False
        if d.rng.choice(options) == "drop":
            d.claims.remove(d.rng.choice(droppable))
        else:  # one more of an object the scene has: a count (and spatial) error, not a hallucination
            obj = d.rng.choice(d.scene.objects)
            d.claims.append(_Claim(obj.shape, obj.color, d.rng.choice(SIZES), d.rng.choice(d.free_cells()), {"new"}))
    d.template = COUNTED_TEMPLATE[d.template]
    return True


def _spatial(d: _Draft) -> bool:
    target = d.pick(lambda c: True, "position")
    if target is None:
        return False
    # Cells of other listed objects, except where the scene has this very (colour, shape): moving there
    # would just describe that twin correctly.
    twins = {o.position for o in d.scene.objects if o.identity == target.identity}
    others = [c for c in d.claims if c.position not in twins]
    if not d.plausible and others:
        different = [c for c in others if c.identity != target.identity]
        target.position = d.rng.choice(different or others).position
    elif d.free_cells():
        target.position = d.rng.choice(d.free_cells())
        if not d.plausible:
            d.generic_tell(target)
    else:
        partners = [c for c in d.claims if c.identity != target.identity and "position" not in c.changed]
        if not partners:
            return False
        partner = d.rng.choice(partners)
        target.position, partner.position = partner.position, target.position
        partner.changed.add("position")
    target.changed.add("position")
    return True


def _shape(d: _Draft) -> bool:
    target = d.pick(lambda c: bool(d.absent_pairs(color=c.color)), "shape")
    if target is None:
        return False
    target.shape = d.rng.choice(d.absent_pairs(color=target.color))[1]
    target.changed.add("shape")
    if not d.plausible:
        d.generic_tell(target)
    return True


_MUTATIONS = {"existence": _existence, "attribute": _attribute, "count": _count, "spatial": _spatial, "shape": _shape}


def _stated_count(d: _Draft) -> int | None:
    if d.template not in COUNT_TEMPLATES:
        return None
    listed = len(d.claims)
    if d.count_lie is None:
        return listed
    # The nearest number in the lie's direction (then the other) that is neither listed nor true.
    steps = [d.count_lie * k for k in range(1, len(NUMBERS))] + [-d.count_lie * k for k in range(1, len(NUMBERS))]
    return next(
        listed + s for s in steps if 1 <= listed + s < len(NUMBERS) and listed + s != len(d.scene.objects)
    )


def check_preference_knobs(
    error_mix: Mapping[str, float] | None = None, plausibility: float = 1.0, num_errors: int = 1
) -> list[float]:
    """Validate the knobs of ``make_preference_pair`` (a clear ValueError naming the bad one); return the
    weights over ``ERROR_TYPES`` (missing keys weigh 0; ``None`` means uniform)."""
    if not 0.0 <= plausibility <= 1.0:
        raise ValueError(f"plausibility={plausibility} must be in [0, 1]")
    if int(num_errors) != num_errors or num_errors < 1:
        raise ValueError(f"num_errors={num_errors} must be an integer >= 1")
    if error_mix is None:
        return [1.0] * len(ERROR_TYPES)
    for key, weight in error_mix.items():
        if key not in ERROR_TYPES:
            raise ValueError(f"error_mix key {key!r} is not an error type; allowed: {ERROR_TYPES}")
        if weight < 0:
            raise ValueError(f"error_mix[{key!r}]={weight} must be >= 0")
    weights = [float(error_mix.get(t, 0.0)) for t in ERROR_TYPES]
    if sum(weights) <= 0:
        raise ValueError(f"error_mix={dict(error_mix)} needs a positive weight on at least one of {ERROR_TYPES}")
    return weights


def make_preference_pair(
    scene: Scene,
    rng: random.Random,
    error_mix: Mapping[str, float] | None = None,
    plausibility: float = 1.0,
    num_errors: int = 1,
    shuffle: bool = False,
) -> PreferencePair:
    """(prompt, faithful caption, caption with ``num_errors`` injected errors); see the module docstring.

    ``error_mix`` weighs ``ERROR_TYPES`` (missing keys weigh 0; default uniform over all five);
    ``plausibility`` is the probability that the rejected caption reads as a correct caption of some
    possible scene; ``shuffle`` is passed to ``describe``'s object order.
    """
    weights = check_preference_knobs(error_mix, plausibility, num_errors)
    prompt = rng.choice(CAPTION_PROMPTS)
    template, objects = caption_plan(scene, rng, shuffle)
    chosen = render_caption(template, objects)
    draft = _Draft(scene, template, [_Claim(o.shape, o.color, o.size, o.position) for o in objects], rng,
                   plausible=rng.random() < plausibility)
    drawn = sorted(rng.choices(ERROR_TYPES, weights, k=int(num_errors)), key=lambda t: t == "count")
    applied = []
    for kind in drawn:
        for draft.strict in (True, False):
            done = next((t for t in (kind, *ERROR_TYPES) if _MUTATIONS[t](draft)), None)
            if done is not None:
                applied.append(done)
                break
    claims = draft.claims
    in_reading_order = [o.position for o in objects] == sorted((o.position for o in objects), key=POSITIONS.index)
    if in_reading_order:  # keep the describer's convention so the order itself is no tell
        claims = sorted(claims, key=lambda c: POSITIONS.index(c.position))
    rejected = render_caption(draft.template, [c.phrase() for c in claims], _stated_count(draft))
    return PreferencePair(prompt, chosen, rejected, tuple(applied))


def text_tells(text: str) -> tuple[str, ...]:
    """Signs, visible without the image, that a caption is wrong: "duplicate_position" (two objects in one
    cell), "count_mismatch" (the stated count is not the number of listed objects), "conflicting_attribute"
    (one object given two sizes, colours or positions)."""
    mentions = parse_mention_words(text)
    tells = []
    cells = [m.positions[0] for m in mentions if m.positions]
    if len(set(cells)) < len(cells):
        tells.append("duplicate_position")
    count = parse_count(text)
    if count is not None and count != len(mentions):
        tells.append("count_mismatch")
    if any(len(set(m.colors)) > 1 or len(set(m.sizes)) > 1 or len(set(m.positions)) > 1 for m in mentions):
        tells.append("conflicting_attribute")
    return tuple(tells)
