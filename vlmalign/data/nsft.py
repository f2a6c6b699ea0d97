"""nSFT examples (arXiv 2411.14797): a preference pair plus the corrective dialogue built from its y_l.

Each example has the pair's one-turn responses (``chosen``, ``rejected``, so the corrupted-image
views and DPO-style terms work on the same data) and the ``negatives`` dialogue: the corrective
question-answer turns G(y_l; y_w, Q) writes, as a conversation about the image whose first user turn
holds the image. A pair whose rejected response has no error gets no turns: its ``negatives`` row has
no labelled token and adds nothing to the negative loss (``SequenceEncoder.encode_dialogue``).

- ``ShapesNSFTDataset``: the very pairs of ``ShapesPreferenceDataset`` (same knobs, same seeds), with
  turns from the exact rule-based builder, computed on the fly;
- ``NSFTJsonlDataset``: the JSON lines ``vlmalign-build-negatives`` writes (shapes rows with a
  ``scene``, or rows with an ``image`` path), e.g. turns written once by the LLM builder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset

from vlmalign.data.encoding import EncodedExample, SequenceEncoder
from vlmalign.data.shapes import render_scene
from vlmalign.data.shapes_preference import ShapesPreferenceDataset
from vlmalign.errors import DataError
from vlmalign.io.jsonl import iter_jsonl
from vlmalign.negatives.interface import PreferenceSample, Turn
from vlmalign.negatives.shapes_rules import corrective_turns
from vlmalign.negatives.sources import sample_from_row

NEGATIVES_VIEW = "negatives"


def encode_nsft_example(encoder: SequenceEncoder, sample_id: str, image: Image.Image, prompt: str, chosen: str,
                        rejected: str, turns: Sequence[Turn], meta: dict | None = None) -> EncodedExample:
    dialogue = [(turn.question, turn.answer) for turn in turns]
    meta = {**(meta or {}), "negative_error_types": [turn.error_type for turn in turns]}
    return encoder.encode(sample_id, image, prompt, {"chosen": chosen, "rejected": rejected}, meta,
                          dialogues={NEGATIVES_VIEW: dialogue})


def nsft_text_length(encoder: SequenceEncoder, prompt: str, chosen: str, rejected: str, turns: Sequence[Turn]) -> int:
    """``SequenceEncoder.text_length`` of an nSFT example: the pair and every corrective turn's question and answer."""
    return encoder.text_length(prompt, [chosen, rejected, *(text for t in turns for text in (t.question, t.answer))])


def max_turns_problem(max_turns) -> str | None:
    """What is wrong with ``data.negatives_max_turns`` (None when nothing): the one rule, for the run checks
    before any model is built and for the data module itself."""
    if max_turns is None or (isinstance(max_turns, int) and not isinstance(max_turns, bool) and max_turns >= 1):
        return None
    return (f"data.negatives_max_turns={max_turns!r}: expected null (every corrective turn) or an integer >= 1 "
            "(the first N turns of each dialogue)")


class ShapesNSFTDataset(ShapesPreferenceDataset):
    """``ShapesPreferenceDataset``'s pair i plus the rule-built corrective turns for its rejected caption.

    ``max_turns`` keeps the first N turns: with 1, every dialogue is one question about the image, the single-turn
    form a base trained without multi-turn chat answers (docs/claims.md, the nSFT study)."""

    def __init__(self, *args, max_turns: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_turns = max_turns

    def turns(self, index: int) -> tuple:
        scene, pair = self.pair_for(index)
        return scene, pair, corrective_turns(scene, pair.rejected)[: self.max_turns]

    def text_length(self, index: int) -> int:
        _, pair, turns = self.turns(index)
        return nsft_text_length(self.encoder, pair.prompt, pair.chosen, pair.rejected, turns)

    def __getitem__(self, index: int) -> EncodedExample:
        scene, pair, turns = self.turns(index)
        image = render_scene(scene, self.world.image_size)
        return encode_nsft_example(self.encoder, scene.image_id, image, pair.prompt, pair.chosen, pair.rejected,
                                   turns, {"errors": pair.errors})


class NSFTJsonlDataset(Dataset):
    """Rows ``{id, scene|image, prompt, chosen, rejected, negative_turns: [{question, answer, error_type}]}``.

    Every row is checked when the dataset is built (a DataError names file:line). A ``scene`` is
    rendered at ``image_size``; an ``image`` path is read relative to the file's folder unless absolute.
    """

    def __init__(self, encoder: SequenceEncoder, path: str | Path, image_size: int) -> None:
        self.encoder, self.path, self.image_size = encoder, Path(path), image_size
        self.rows: list[tuple[PreferenceSample, tuple[Turn, ...]]] = []
        for number, row in iter_jsonl(self.path):
            origin = f"{self.path}:{number}"
            self.rows.append((sample_from_row(row, origin), _turns(row, origin)))
        if not self.rows:
            raise DataError(f"{self.path} has no rows; build it with vlmalign-build-negatives")

    def digest(self) -> str:
        """Content hash: fixes every text and image of the dataset (reference-cache fingerprints)."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.rows)

    def image(self, sample: PreferenceSample) -> Image.Image:
        if sample.scene is not None:
            return render_scene(sample.scene, self.image_size)
        path = Path(sample.image)
        path = path if path.is_absolute() else self.path.parent / path
        try:
            with Image.open(path) as image:
                return image.convert("RGB")
        except OSError as error:
            raise DataError(f"{sample.origin}: cannot read image {path} ({error})") from error

    def text_length(self, index: int) -> int:
        sample, turns = self.rows[index]
        return nsft_text_length(self.encoder, sample.prompt, sample.chosen, sample.rejected, turns)

    def __getitem__(self, index: int) -> EncodedExample:
        sample, turns = self.rows[index]
        return encode_nsft_example(self.encoder, sample.id, self.image(sample), sample.prompt, sample.chosen,
                                   sample.rejected, turns)


def _turns(row: Mapping, origin: str) -> tuple[Turn, ...]:
    turns = row.get("negative_turns")
    if not isinstance(turns, list):
        raise DataError(f"{origin}: field 'negative_turns' must be a list of {{question, answer, error_type}} "
                        f"objects (an nSFT file written by vlmalign-build-negatives), got {type(turns).__name__}")
    out = []
    for k, turn in enumerate(turns):
        if not (isinstance(turn, dict) and all(isinstance(turn.get(k), str) for k in ("question", "answer"))):
            raise DataError(f"{origin}: negative_turns[{k}] must be an object with string 'question' and 'answer'")
        out.append(Turn(turn["question"], turn["answer"], str(turn.get("error_type", ""))))
    return tuple(out)
