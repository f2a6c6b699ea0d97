"""The vision error codebook Q of nSFT (arXiv 2411.14797), loaded from ``codebook.yaml`` into dataclasses.

The YAML file is the single source of error-type names, their prompt descriptions and question
templates; nothing else in ``vlmalign.negatives`` spells an error-type name except to look it up here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from vlmalign.errors import ConfigError
from vlmalign.utils.files import fingerprint

DEFAULT_CODEBOOK = Path(__file__).with_name("codebook.yaml")
ANSWER_FORMATS = ("yes_no", "number", "free")
# Number words an LLM writes for counts; "no"/"none" state zero ("there are no dogs").
_NUMBER_WORDS = frozenset(
    "no none zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty single both couple dozen".split()
)
_WORD = re.compile(r"[a-z]+|\d+")


@dataclass(frozen=True)
class ErrorType:
    name: str
    title: str
    description: str
    aliases: tuple[str, ...]
    answer: str  # one of ANSWER_FORMATS
    templates: Mapping[str, str]
    example: Mapping[str, str]

    def question(self, template: str, **fields: str) -> str:
        """Fill the named template (plain English; the shapes builder re-spaces it for its tokenizer)."""
        if template not in self.templates:
            raise KeyError(f"error type {self.name!r} has no question template {template!r}; "
                           f"it has {sorted(self.templates)}")
        return self.templates[template].format(**fields)

    def answer_problem(self, answer: str) -> str | None:
        """Why ``answer`` does not fit this type's answer format, or None when it does."""
        words = _WORD.findall(answer.lower())
        if self.answer == "yes_no" and (not words or words[0] not in ("yes", "no")):
            return f"a {self.name} answer must start with yes or no"
        if self.answer == "number" and not any(w.isdigit() or w in _NUMBER_WORDS for w in words):
            return f"a {self.name} answer must state a number"
        return None


@dataclass(frozen=True)
class Codebook:
    error_types: tuple[ErrorType, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.error_types)

    def __iter__(self) -> Iterator[ErrorType]:
        return iter(self.error_types)

    def __getitem__(self, name: str) -> ErrorType:
        """The error type called ``name`` (canonical name, title or alias; case and spacing ignored)."""
        found = self.lookup(name)
        if found is None:
            raise KeyError(f"{name!r} is not an error type of the codebook; known: {', '.join(self.names)}")
        return found

    def lookup(self, name: str) -> ErrorType | None:
        key = _normalise(name)
        for error_type in self.error_types:
            if key in {_normalise(n) for n in (error_type.name, error_type.title, *error_type.aliases)}:
                return error_type
        return None

    def fingerprint(self) -> str:
        """Changes whenever anything a prompt or a turn depends on changes (cache and resume identity)."""
        return fingerprint([_as_dict(t) for t in self.error_types])


def _normalise(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


def _as_dict(error_type: ErrorType) -> dict:
    return {"name": error_type.name, "title": error_type.title, "description": error_type.description,
            "aliases": list(error_type.aliases), "answer": error_type.answer,
            "templates": dict(error_type.templates), "example": dict(error_type.example)}


def _parse_entry(entry: object, where: str) -> ErrorType:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: an error type must be a mapping, got {type(entry).__name__}")
    missing = [k for k in ("name", "title", "description", "answer", "templates", "example") if k not in entry]
    if missing:
        raise ConfigError(f"{where}: missing field(s) {missing}")
    if entry["answer"] not in ANSWER_FORMATS:
        raise ConfigError(f"{where}: answer={entry['answer']!r} must be one of {ANSWER_FORMATS}")
    example = entry["example"]
    if not (isinstance(example, dict) and {"question", "answer"} <= set(example)):
        raise ConfigError(f"{where}: example must have a question and an answer")
    return ErrorType(
        name=str(entry["name"]),
        title=str(entry["title"]),
        description=" ".join(str(entry["description"]).split()),
        aliases=tuple(str(a) for a in entry.get("aliases", ())),
        answer=entry["answer"],
        templates={str(k): str(v) for k, v in dict(entry["templates"] or {}).items()},
        example={"question": str(example["question"]), "answer": str(example["answer"])},
    )


def load_codebook(path: str | Path | None = None) -> Codebook:
    """Read a codebook file (default: the packaged one); a malformed file is a ConfigError naming it."""
    return _load(str(Path(path or DEFAULT_CODEBOOK).resolve()))


@lru_cache(maxsize=8)
def _load(path: str) -> Codebook:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read the error codebook {path}: {error}") from error
    entries = data.get("error_types") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: expected a top-level 'error_types' list")
    codebook = Codebook(tuple(_parse_entry(e, f"{path}: error_types[{i}]") for i, e in enumerate(entries)))
    spellings = [_normalise(n) for t in codebook for n in {t.name, t.title, *t.aliases}]
    clashes = sorted({s for s in spellings if spellings.count(s) > 1})
    if clashes:
        raise ConfigError(f"{path}: names/aliases {clashes} belong to more than one error type")
    return codebook
