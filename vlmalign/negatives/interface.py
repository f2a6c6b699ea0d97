"""The negative-supervision builder G(y_l; y_w, Q) of nSFT (arXiv 2411.14797), behind one interface.

nSFT's claim is that what RLHF learns from a preference pair is mostly the negative supervision in
the rejected response y_l. G makes that supervision explicit: it compares y_l with the chosen y_w
(or with ground truth, where there is some), names each visual error with a type from the codebook
Q, and writes corrective question-answer turns ("Is there a green triangle? No.") that are then
trained on with plain SFT next to y_w.

A builder raises ``RejectedSample`` for a sample it cannot build (e.g. an LLM answered with
malformed JSON); ``try_build`` turns that into a counted outcome, so one bad sample never stops a
run and none is dropped silently.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from vlmalign.data.shapes.world import Scene
from vlmalign.llm.parse import RejectedSample  # noqa: F401  (re-exported: part of the builder interface)
from vlmalign.negatives.stats import BuildStats


@dataclass(frozen=True)
class Turn:
    """One corrective dialogue turn: the user asks ``question``, the assistant answers ``answer``."""

    question: str
    answer: str
    error_type: str  # a codebook name

    def to_dict(self) -> dict[str, str]:
        return {"question": self.question, "answer": self.answer, "error_type": self.error_type}


@dataclass(frozen=True)
class PreferenceSample:
    """One preference pair; ``scene`` is the ground truth when there is one (the shapes world)."""

    id: str
    prompt: str
    chosen: str
    rejected: str
    image: str | None = None
    scene: Scene | None = None
    origin: str = ""  # "file:line" it was read from, for error messages

    def to_output(self, turns: Iterable[Turn]) -> dict[str, Any]:
        """The nSFT dataset row: the pair's prompt and chosen response plus the constructed turns."""
        row: dict[str, Any] = {"id": self.id}
        if self.image is not None:
            row["image"] = self.image
        if self.scene is not None:
            row["scene"] = self.scene.to_dict()
        # ``rejected`` is kept so every turn can be audited against the text it corrects.
        row.update(prompt=self.prompt, chosen=self.chosen, rejected=self.rejected,
                   negative_turns=[t.to_dict() for t in turns])
        return row


@dataclass(frozen=True)
class BuildOutcome:
    sample: PreferenceSample
    turns: tuple[Turn, ...] = ()
    rejection: RejectedSample | None = None

    @property
    def is_rejected(self) -> bool:
        return self.rejection is not None


class NegativeBuilder(ABC):
    """G(y_l; y_w, Q): one preference sample in, corrective turns out."""

    def __init__(self) -> None:
        self.stats = BuildStats()

    @property
    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """JSON-serialisable description of everything that determines the turns (resume checks, cache keys)."""

    @abstractmethod
    def build(self, sample: PreferenceSample) -> list[Turn]:
        """The corrective turns of one sample ([] when the rejected response has no error);
        raises ``RejectedSample`` when the sample cannot be built."""

    def try_build(self, sample: PreferenceSample) -> BuildOutcome:
        """``build`` with the outcome counted in ``self.stats``."""
        try:
            turns = tuple(self.build(sample))
        except RejectedSample as rejection:
            self.stats.record_rejected(rejection.reason)
            return BuildOutcome(sample, rejection=rejection)
        self.stats.record_built(len(turns))
        return BuildOutcome(sample, turns)

    def build_many(self, samples: Iterable[PreferenceSample]) -> Iterator[BuildOutcome]:
        """Outcomes in input order; a builder that can batch (one generate call for many prompts) overrides this."""
        for sample in samples:
            yield self.try_build(sample)
