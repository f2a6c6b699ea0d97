"""Parse object mentions, stated counts and yes/no answers out of free text.

Robust to every caption template and to messy model output: a mention is a shape word; colour and
size words between the previous shape and this one attach to it (adjectives precede the noun); a
position phrase attaches to the shape before it in the same clause, or, in "at the top there is a
red circle", to the shape after it.
"""

from __future__ import annotations

from dataclasses import dataclass

from vlmalign.data.shapes.text import NUMBERS, PLURALS
from vlmalign.data.shapes.world import COLORS, POSITIONS, SHAPES, SIZES

SHAPE_WORDS = {**{s: s for s in SHAPES}, **{p: s for s, p in PLURALS.items()}}
CLAUSE_BREAKS = {",", ".", ":", "and", "?", ";"}
POSITION_PHRASES = sorted((tuple(p.split()) for p in POSITIONS), key=len, reverse=True)  # longest match first


@dataclass(frozen=True)
class Mention:
    shape: str
    color: str | None
    size: str | None
    position: str | None


def _position_at(words: list[str], i: int) -> tuple[str, int] | None:
    for phrase in POSITION_PHRASES:
        if tuple(words[i : i + len(phrase)]) == phrase:
            return " ".join(phrase), len(phrase)
    return None


def _clauses(words: list[str]) -> list[list[str]]:
    clauses, current = [], []
    for word in words:
        if word in CLAUSE_BREAKS:
            clauses.append(current)
            current = []
        else:
            current.append(word)
    clauses.append(current)
    return [c for c in clauses if c]


def _parse_clause(words: list[str]) -> list[Mention]:
    mentions: list[dict] = []
    color = size = pending_position = None
    i = 0
    while i < len(words):
        word = words[i]
        found = _position_at(words, i) if word not in COLORS and word not in SIZES else None
        if found:
            position, length = found
            if mentions and mentions[-1]["position"] is None:
                mentions[-1]["position"] = position
            else:
                pending_position = position
            i += length
            continue
        if word in COLORS:
            color = word
        elif word in SIZES:
            size = word
        elif word in SHAPE_WORDS:
            mentions.append({"shape": SHAPE_WORDS[word], "color": color, "size": size, "position": pending_position})
            color = size = pending_position = None
        i += 1
    return [Mention(**m) for m in mentions]


def parse_mentions(text: str) -> list[Mention]:
    words = text.lower().replace(",", " , ").replace(".", " . ").replace("?", " ? ").split()
    # "how many circles" asks about circles; it does not claim one exists
    words = [w for i, w in enumerate(words) if w != "many" and (i == 0 or words[i - 1] != "many")]
    return [m for clause in _clauses(words) for m in _parse_clause(clause)]


def parse_count(text: str) -> int | None:
    words = text.lower().split()
    for i, word in enumerate(words[:-1]):
        if word in NUMBERS and words[i + 1] in {"object", "objects", "shape", "shapes"}:
            return NUMBERS.index(word)
    return None


def parse_yes_no(text: str) -> bool | None:
    for word in text.lower().replace(",", " ").replace(".", " ").split():
        if word == "yes":
            return True
        if word == "no":
            return False
    return None
