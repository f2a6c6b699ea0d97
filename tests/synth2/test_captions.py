"""Synth² caption sources: shapes captions balanced/diverse as asked and faithful to their scenes; LLM captions
validated (every rejection counted), concept-balanced, cached, and failing loudly when too few survive."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter

import pytest

from vlmalign.data.shapes.parse import parse_mentions
from vlmalign.data.shapes.text import TEMPLATES, render_caption
from vlmalign.data.shapes.world import POSITIONS, SIZES, generate_scenes
from vlmalign.errors import DataError
from vlmalign.llm.backends import BackendError
from vlmalign.pipelines.synth2.captions import (
    CATEGORIES,
    PROMPT,
    LLMCaptionSource,
    ShapesCaptionSource,
    caption_source_stats,
)


def counts(captions, field):
    objects = [o for c in captions for o in c.scene.objects]
    if field == "category":
        return Counter(o.identity for o in objects)
    return Counter(getattr(o, field) for o in objects)


def spread(counter, values):
    return max(counter[v] for v in values) - min(counter[v] for v in values)


# --- shapes ---------------------------------------------------------------------------------------------------


def test_shapes_captions_are_deterministic_prefix_stable_and_in_their_own_namespace():
    source = ShapesCaptionSource(seed=3, max_objects=4)
    full = source.captions(60)
    assert full == ShapesCaptionSource(seed=3, max_objects=4).captions(60)
    assert source.captions(17) == full[:17]
    assert [c.caption_id for c in full[:2]] == ["synth-3-000000", "synth-3-000001"]
    assert all(c.caption_id == c.scene.image_id for c in full)
    real_ids = {s.image_id for split in ("train", "val", "test") for s in generate_scenes(split, 60, seed=3)}
    assert not real_ids & {c.caption_id for c in full}
    assert full != ShapesCaptionSource(seed=4, max_objects=4).captions(60)
    for caption in full:
        cells = [o.position for o in caption.scene.objects]
        assert 1 <= len(cells) <= 4 and len(set(cells)) == len(cells)
        assert cells == sorted(cells, key=POSITIONS.index)  # reading order


@pytest.mark.parametrize("n", [1, 7, 133, 400])
def test_uniform_balance_keeps_every_category_size_and_position_within_one(n):
    # Least-used-first keeps max - min <= 1 after every pick (positions too: k distinct least-used cells).
    captions = ShapesCaptionSource(seed=0, balance="uniform", max_objects=3).captions(n)
    assert spread(counts(captions, "category"), CATEGORIES) <= 1
    assert spread(counts(captions, "size"), SIZES) <= 1
    assert spread(counts(captions, "position"), POSITIONS) <= 1


def test_natural_balance_is_visibly_less_even_than_uniform():
    natural = ShapesCaptionSource(seed=0, balance="natural").captions(400)
    uniform = ShapesCaptionSource(seed=0, balance="uniform").captions(400)
    assert spread(counts(natural, "category"), CATEGORIES) > 1
    assert spread(counts(natural, "position"), POSITIONS) > 1
    assert caption_source_stats(natural)["category_balance"] > caption_source_stats(uniform)["category_balance"]


@pytest.mark.parametrize("balance", ["uniform", "natural"])
def test_concept_fraction_limits_categories_and_every_caption_parses_back_to_its_scene(balance):
    captions = ShapesCaptionSource(seed=5, balance=balance, concept_fraction=0.25, max_objects=4).captions(400)
    stats = caption_source_stats(captions)
    assert stats["categories_used"] == 5 and len(counts(captions, "category")) == 5
    for caption in captions:
        mentions = parse_mentions(caption.text)
        assert Counter((m.color, m.shape) for m in mentions) == Counter(o.identity for o in caption.scene.objects)
        assert [(m.color, m.shape, m.size, m.position) for m in mentions] == [
            (o.color, o.shape, o.size, o.position) for o in caption.scene.objects]
    assert {t.split()[0] for t in (c.text for c in captions)} > {"a"}  # several templates in use
    other_seed = ShapesCaptionSource(seed=6, concept_fraction=0.25).categories
    assert set(other_seed) != set(ShapesCaptionSource(seed=5, concept_fraction=0.25).categories)


def test_templates_restrict_the_text_and_stats_summarise():
    captions = ShapesCaptionSource(seed=1, templates=["position_first"]).captions(30)
    assert all(c.text == render_caption("position_first", c.scene.objects) for c in captions)
    stats = caption_source_stats(captions)
    assert stats["captions"] == 30 and stats["distinct_texts"] <= 30
    assert sum(stats["sizes"].values()) == sum(len(c.scene.objects) for c in captions)
    assert 1 <= stats["mean_objects"] <= 3
    assert caption_source_stats([]) == {"captions": 0, "distinct_texts": 0}


def test_identity_is_json_and_changes_with_every_knob():
    base = ShapesCaptionSource().identity
    json.dumps(base)
    for knob in ({"seed": 1}, {"balance": "natural"}, {"concept_fraction": 0.5}, {"min_objects": 2},
                 {"max_objects": 5}, {"templates": ["list"]}):
        assert ShapesCaptionSource(**knob).identity != base, knob
    assert ShapesCaptionSource(templates=list(TEMPLATES)).identity == base


@pytest.mark.parametrize("kwargs, words", [
    ({"concept_fraction": 0.0}, ["concept_fraction", "(0, 1]"]),
    ({"concept_fraction": 1.5}, ["concept_fraction", "(0, 1]"]),
    ({"balance": "zipf"}, ["balance", "zipf", "uniform", "natural"]),
    ({"min_objects": 0}, ["min_objects"]),
    ({"max_objects": 10}, ["max_objects", "9"]),
    ({"min_objects": 3, "max_objects": 2}, ["min_objects", "max_objects"]),
    ({"templates": ["haiku"]}, ["templates", "haiku", "count_list"]),
    ({"templates": []}, ["templates", "empty"]),
])
def test_bad_shapes_knobs_raise_naming_the_knob(kwargs, words):
    with pytest.raises(ValueError) as error:
        ShapesCaptionSource(**kwargs)
    assert all(w in str(error.value) for w in words), str(error.value)


# --- LLM ------------------------------------------------------------------------------------------------------

CONCEPTS = ["zebra", "violin", "lighthouse", "teapot", "kayak"]


class FakeBackend:
    """Canned JSON replies built from the concepts in the prompt; counts calls. ``script`` replaces the first
    replies (callables of the prompt's concepts), ``fail`` raises BackendError like an unreachable endpoint."""

    def __init__(self, script=(), junk=False, fail=False) -> None:
        self.script, self.junk, self.fail = list(script), junk, fail
        self.calls, self.prompts = 0, []

    @property
    def identity(self) -> dict:
        return {"backend": "fake", "model": "canned-v1"}

    def complete(self, prompt: str) -> str:
        self.calls += 1
        self.prompts.append(prompt)
        if self.fail:
            raise BackendError("connection refused")
        if self.junk:
            return "Sure! Here are some captions: a zebra, a violin."
        concepts = [c for c in CONCEPTS if c in prompt]
        if self.script:
            return self.script.pop(0)(concepts)
        tag = hashlib.sha256(prompt.encode()).hexdigest()[:6]
        return json.dumps([f"a {concepts[0]} beside a {concepts[-1]} in scene {tag} , variant {j} ." for j in range(4)])


def test_prompt_words_do_not_collide_with_test_concepts():
    assert not any(c in PROMPT for c in CONCEPTS)


def test_llm_captions_are_accepted_deterministic_and_concept_balanced():
    backend = FakeBackend()
    source = LLMCaptionSource(backend, CONCEPTS, seed=2, captions_per_prompt=4)
    captions = source.captions(44)
    assert backend.calls == 11 and not source.rejected
    assert [c.caption_id for c in captions[:2]] == ["llm-2-000000", "llm-2-000001"]
    assert all(c.scene is None for c in captions)
    assert captions == LLMCaptionSource(FakeBackend(), CONCEPTS, seed=2, captions_per_prompt=4).captions(44)
    assert LLMCaptionSource(FakeBackend(), CONCEPTS, seed=2, captions_per_prompt=4).captions(10) == captions[:10]
    per_prompt = [[c for c in CONCEPTS if c in p] for p in backend.prompts]
    assert all(len(group) == 2 for group in per_prompt)  # two distinct concepts each, also across passes
    used = Counter(c for group in per_prompt for c in group)
    assert spread(used, CONCEPTS) <= 1 and sum(used.values()) == 22
    assert caption_source_stats(captions) == {"captions": 44, "distinct_texts": 44}


@pytest.mark.parametrize("seed", range(5))
def test_concept_groups_never_repeat_a_concept_and_stay_balanced_across_passes(seed):
    # 3 concepts, 2 per prompt: every other prompt straddles two shuffles, where a repeat could happen.
    groups = LLMCaptionSource(FakeBackend(), CONCEPTS[:3], seed=seed).concept_groups()
    used = Counter()
    for _ in range(30):
        group = next(groups)
        assert len(set(group)) == 2
        used.update(group)
        assert spread(used, CONCEPTS[:3]) <= 1


def test_every_rejection_reason_is_counted_and_logged_and_duplicates_dropped(caplog):
    def messy(concepts):
        a, b = concepts
        return json.dumps([f"A {a} on a beach at dawn .", 42, "   ", " ".join([a] * 61), "an empty street .",
                           f"a  {a.upper()} on a beach AT dawn .", f"a {b} in the rain ."])

    backend = FakeBackend(script=[messy, lambda _: "I cannot help with that.", lambda _: '{"captions": []}'])
    source = LLMCaptionSource(backend, CONCEPTS, captions_per_prompt=4)
    with caplog.at_level(logging.WARNING, logger="vlmalign.pipelines.synth2.captions"):
        captions = source.captions(6)
    assert dict(source.rejected) == {"bad_item": 1, "empty": 1, "too_long": 1, "off_concept": 1, "duplicate": 1,
                                     "not_a_list": 2}
    assert len([r for r in caplog.records if r.name == "vlmalign.pipelines.synth2.captions"]) == 7
    texts = [c.text for c in captions]
    assert len(texts) == 6 and texts[0].startswith("A ") and texts[1].endswith("in the rain .")
    assert backend.calls == 4  # 2 accepted, two junk replies, then 4 more from one good reply
    assert len(source.captions(2)) == 2 and not source.rejected  # counts are per call, not accumulated


def test_max_words_is_the_too_long_threshold():
    backend = FakeBackend()  # its captions have 12 words
    assert len(LLMCaptionSource(backend, CONCEPTS, captions_per_prompt=4, max_words=12).captions(4)) == 4
    source = LLMCaptionSource(backend, CONCEPTS, captions_per_prompt=4, max_words=11, max_prompts=2)
    with pytest.raises(DataError):
        source.captions(1)
    assert source.rejected == Counter(too_long=8)


def test_a_second_source_with_the_same_cache_asks_the_backend_nothing(tmp_path):
    first = FakeBackend()
    captions = LLMCaptionSource(first, CONCEPTS, cache_dir=tmp_path, captions_per_prompt=4).captions(12)
    again = FakeBackend(fail=True)  # would raise if called
    assert LLMCaptionSource(again, CONCEPTS, cache_dir=tmp_path, captions_per_prompt=4).captions(12) == captions
    assert (first.calls, again.calls) == (3, 0)


def test_junk_replies_end_in_a_data_error_that_says_what_to_change():
    backend = FakeBackend(junk=True)
    source = LLMCaptionSource(backend, CONCEPTS, captions_per_prompt=4)
    with pytest.raises(DataError) as error:
        source.captions(5)
    assert backend.calls == 8  # default max_prompts = 4 * ceil(5 / 4)
    message = str(error.value)
    assert "0 of 5" in message and "not_a_list" in message and "max_prompts" in message


def test_an_outage_propagates_and_is_not_a_rejection():
    source = LLMCaptionSource(FakeBackend(fail=True), CONCEPTS)
    with pytest.raises(BackendError):
        source.captions(3)
    assert not source.rejected


def test_llm_identity_and_bad_knobs():
    source = LLMCaptionSource(FakeBackend(), CONCEPTS, seed=1)
    identity = source.identity
    json.dumps(identity)
    assert identity["backend"] == FakeBackend().identity and identity["concepts"] == CONCEPTS
    assert LLMCaptionSource(FakeBackend(), CONCEPTS, seed=2).identity != identity
    assert LLMCaptionSource(FakeBackend(), CONCEPTS, seed=1, max_words=20).identity != identity
    for kwargs, word in (({"concepts": []}, "concepts"), ({"concepts": "zebra"}, "concepts"),
                         ({"concepts": ["a", "A"]}, "duplicates"), ({"concepts_per_prompt": 6}, "concepts_per_prompt"),
                         ({"captions_per_prompt": 0}, "captions_per_prompt"), ({"max_prompts": 0}, "max_prompts")):
        with pytest.raises(ValueError, match=word):
            LLMCaptionSource(FakeBackend(), **{"concepts": CONCEPTS, **kwargs})
