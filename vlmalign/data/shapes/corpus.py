"""The text the shapes tokenizer is trained on: every kind of text the world emits.

Its own module because it draws on both text.py and preference.py (which builds on text.py).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from vlmalign.data.shapes.preference import make_preference_pair
from vlmalign.data.shapes.text import CAPTION_PROMPTS, describe, questions
from vlmalign.data.shapes.world import generate_scenes


def corpus(num_scenes: int = 2000, seed: int = 0) -> Iterator[str]:
    """Prompts, captions, questions, answers and rejected captions, for tokenizer training."""
    yield from CAPTION_PROMPTS
    rng = random.Random(f"corpus:{seed}")
    for i, scene in enumerate(generate_scenes("corpus", num_scenes, seed, 1, 4)):
        yield describe(scene, rng, shuffle=i % 2 == 1)
        # 0.0 draws no extra random number: the corpus, hence the tokenizer's token ids, stay fixed.
        for _, question, answer in questions(scene, rng, confusable_negatives=0.0):
            yield question
            yield answer
        yield make_preference_pair(scene, rng, plausibility=float(i % 2), num_errors=1 + i % 3).rejected
