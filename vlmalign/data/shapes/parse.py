"""Parse object mentions, stated counts and yes/no answers out of free text.

Built to be robust both to every caption template (text.py, preference.py) and to messy model output
(repeated words, missing attributes, unknown words, truncated text):

- text is split into sentences (at . ? !) and sentences that end in "?" are dropped: a question
  about a red circle does not claim one exists; "how many circles ..." is skipped for the same reason;
- sentences split into clauses at , : ; and "and"; a mention is a shape word (plural forms count as
  one mention); colour and size words since the previous shape are its adjectives (the last one wins
  when a phrase says two); a position phrase attaches to the shape before it in the clause when that
  shape has none yet ("a red circle at the top left"), otherwise to the next shape ("at the top left
  there is a red circle");
- "no"/"not"/"zero" before a shape negates it ("there is no red circle" mentions nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

from vlmalign.data.shapes.text import NUMBERS, PLURALS
from vlmalign.data.shapes.world import COLORS, POSITIONS, SHAPES, SIZES

SHAPE_WORDS = {**{s: s for s in SHAPES}, **{p: s for s, p in PLURALS.items()}}
SENTENCE_ENDS = {".", "?", "!"}
CLAUSE_BREAKS = {",", ":", ";", "and"}
NEGATIONS = {"no", "not", "zero", "without"}
COUNT_NOUNS = {"object", "objects", "shape", "shapes"}
POSITION_PHRASES = sorted((tuple(p.split()) for p in POSITIONS), key=len, reverse=True)  # longest match first
_PUNCTUATION = ",.?:;!"


@dataclass(frozen=True)
class Mention:
    shape: str
    color: str | None
    size: str | None
    position: str | None


@dataclass(frozen=True)
class MentionWords:
    """Every attribute word attached to one mention, for spotting self-contradictions ("a small large circle")."""

    shape: str
    colors: tuple[str, ...]
    sizes: tuple[str, ...]
    positions: tuple[str, ...]

    def mention(self) -> Mention:
        return Mention(
            self.shape,
            self.colors[-1] if self.colors else None,
            self.sizes[-1] if self.sizes else None,
            self.positions[0] if self.positions else None,
        )


def tokenize(text: str) -> list[str]:
    text = text.lower()
    for mark in _PUNCTUATION:
        text = text.replace(mark, f" {mark} ")
    return text.split()


def _statements(words: list[str]) -> list[list[str]]:
    """Sentences that are not questions (a truncated last sentence counts as a statement)."""
    sentences, current = [], []
    for word in words:
        current.append(word)
        if word in SENTENCE_ENDS:
            sentences.append(current)
            current = []
    sentences.append(current)
    return [s for s in sentences if s and s[-1] != "?"]


def _clauses(sentence: list[str]) -> list[list[str]]:
    clauses, current, skipping = [], [], False
    for i, word in enumerate(sentence):
        if word in CLAUSE_BREAKS or word in SENTENCE_ENDS:
            clauses.append(current)
            current, skipping = [], False
        elif word == "how" and i + 1 < len(sentence) and sentence[i + 1] == "many":
            skipping = True  # "how many circles" asks; it does not claim
        elif not skipping:
            current.append(word)
    clauses.append(current)
    return [c for c in clauses if c]


def _position_at(words: list[str], i: int) -> tuple[str, int] | None:
    for phrase in POSITION_PHRASES:
        if tuple(words[i : i + len(phrase)]) == phrase:
            return " ".join(phrase), len(phrase)
    return None


def _parse_clause(words: list[str]) -> list[MentionWords]:
    mentions: list[dict] = []
    colors: list[str] = []
    sizes: list[str] = []
    pending: list[str] = []
    negated = False
    i = 0
    while i < len(words):
        word = words[i]
        found = _position_at(words, i)
        if found:
            position, length = found
            if mentions and not mentions[-1]["positions"] and not (colors or sizes or pending):
                mentions[-1]["positions"].append(position)
            else:
                pending.append(position)
            i += length
            continue
        if word in COLORS:
            colors.append(word)
        elif word in SIZES:
            sizes.append(word)
        elif word in NEGATIONS:
            negated = True
        elif word in SHAPE_WORDS:
            if not negated:
                mentions.append({"shape": SHAPE_WORDS[word], "colors": colors, "sizes": sizes, "positions": pending})
            colors, sizes, pending, negated = [], [], [], False
        i += 1
    if pending and mentions:  # "a red circle at the top at the center": a second, conflicting position
        mentions[-1]["positions"].extend(pending)
    return [MentionWords(m["shape"], tuple(m["colors"]), tuple(m["sizes"]), tuple(m["positions"])) for m in mentions]


def parse_mention_words(text: str) -> list[MentionWords]:
    """Like ``parse_mentions`` but keeps every attribute word of each mention."""
    clauses = (clause for sentence in _statements(tokenize(text)) for clause in _clauses(sentence))
    return [m for clause in clauses for m in _parse_clause(clause)]


def parse_mentions(text: str) -> list[Mention]:
    """Every object a caption claims, in order of appearance."""
    return [m.mention() for m in parse_mention_words(text)]


def parse_count(text: str) -> int | None:
    """The first stated total ("there are two objects", "the image shows one shape"), or None."""
    for sentence in _statements(tokenize(text)):
        for i, word in enumerate(sentence[:-1]):
            if word in NUMBERS and sentence[i + 1] in COUNT_NOUNS:
                return NUMBERS.index(word)
    return None


def parse_yes_no(text: str) -> bool | None:
    """The first yes/no word (True for yes); None when the text has neither."""
    for word in tokenize(text):
        if word == "yes":
            return True
        if word == "no":
            return False
    return None
