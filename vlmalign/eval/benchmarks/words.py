"""Tokenising and singularising object words without NLTK or spaCy (neither's data is reachable offline).

The official CHAIR script tokenises with ``nltk.word_tokenize`` and singularises every token (pattern.en's
``singularize`` in Rohrbach et al.'s script, WordNet's lemmatiser in the RLHF-V/RLAIF-V copies); AMBER's
``inference.py`` lemmatises NLTK nouns with WordNet. Both then keep only the tokens that are in a closed
vocabulary (COCO synonyms, AMBER's ``relation.json``), so a lemmatiser only has to be right *on that
vocabulary*: ``Singularizer`` tries a word as written, then irregular plurals, then the English plural
suffix rules, and returns the first candidate in the vocabulary (or the word unchanged). It is
deterministic and has no data files; where WordNet would turn a vocabulary plural into a word outside the
vocabulary (AMBER's ``slippers``), this one keeps the vocabulary word. docs/benchmarks.md lists the
differences.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Lower-case word tokens; a hyphen inside a word keeps it whole ("e-book", "t-shirt") as nltk.word_tokenize
# does, an apostrophe splits ("dog's" -> "dog", "s") as nltk does ("dog", "'s").
TOKEN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

IRREGULAR_PLURALS = {
    "men": "man", "women": "woman", "children": "child", "people": "person", "mice": "mouse",
    "geese": "goose", "feet": "foot", "teeth": "tooth", "oxen": "ox", "knives": "knife", "wives": "wife",
    "leaves": "leaf", "loaves": "loaf", "halves": "half", "shelves": "shelf", "calves": "calf",
    "wolves": "wolf", "scarves": "scarf", "policemen": "policeman", "firemen": "fireman",
    "gentlemen": "gentleman", "sheep": "sheep", "deer": "deer", "fish": "fish", "cacti": "cactus",
}


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def plural_candidates(word: str) -> list[str]:
    """Singular forms ``word`` could be the plural of, most specific rule first."""
    candidates = []
    if word in IRREGULAR_PLURALS:
        candidates.append(IRREGULAR_PLURALS[word])
    if word.endswith("ies") and len(word) > 4:
        candidates.append(word[:-3] + "y")  # ponies -> pony
    if word.endswith("ves") and len(word) > 4:
        candidates += [word[:-3] + "f", word[:-3] + "fe"]  # loaves -> loaf, knives -> knife
    if word.endswith(("ses", "xes", "zes", "ches", "shes", "oes")) and len(word) > 4:
        candidates.append(word[:-2])  # buses -> bus, boxes -> box, benches -> bench, tomatoes -> tomato
    if word.endswith("s") and not word.endswith("ss") and len(word) > 2:
        candidates.append(word[:-1])  # dogs -> dog, horses -> horse, glasses (ss) handled above
    if word.endswith("es") and len(word) > 3:
        candidates.append(word[:-2])  # glasses -> glass
    return candidates


class Singularizer:
    """Singular forms restricted to a vocabulary: the word if known, else its first known singular."""

    def __init__(self, vocabulary: Iterable[str]) -> None:
        self.vocabulary = frozenset(vocabulary)
        self._cache: dict[str, str] = {}

    def __call__(self, word: str) -> str:
        if word not in self._cache:
            if word in self.vocabulary:
                self._cache[word] = word
            else:
                self._cache[word] = next((c for c in plural_candidates(word) if c in self.vocabulary), word)
        return self._cache[word]
