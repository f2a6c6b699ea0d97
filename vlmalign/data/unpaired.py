"""Unpaired examples (KTO, arXiv 2402.01306): one response per prompt, labelled desirable or undesirable.

An unpaired example carries the views KTO's term scores (``vlmalign.objectives.kto``), named here once:
its response under ``desirable`` or ``undesirable`` (the label), an empty row under the other (the prompt
with nothing labelled: ``SequenceEncoder.encode_dialogue``), and under ``mismatched`` the response of
another example, asked under this example's prompt and image: KTO's reference point z_0 is the policy's
log-ratio on such pairs. The collator needs no entry for these names: a view it does not know is the
example's response or dialogue of that name.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from vlmalign.data.encoding import EncodedExample, SequenceEncoder
from vlmalign.errors import DataError
from vlmalign.views import UNPAIRED_VIEWS  # noqa: F401  (named once, below data and objectives)


def label_view(desirable: bool) -> str:
    return "desirable" if desirable else "undesirable"


def unpaired_example(encoder: SequenceEncoder, sample_id: str, image: Image.Image, prompt: str, completion: str,
                     desirable: bool, mismatched: str, meta: dict | None = None) -> EncodedExample:
    """``completion`` under its label's view, an empty row under the other, ``mismatched`` under ``mismatched``."""
    responses = {label_view(desirable): completion, "mismatched": mismatched}
    return encoder.encode(sample_id, image, prompt, responses, {**(meta or {}), "desirable": desirable},
                          dialogues={label_view(not desirable): ()})


def mismatched_index(index: int, size: int) -> int:
    """Whose response example ``index`` is scored on for z_0: the next example's (the last one's: the first)."""
    return (index + 1) % size


def check_both_classes(labels: Sequence[bool], where: str) -> None:
    """KTO needs desirable and undesirable examples (its loss pushes each class to its own side of z_0)."""
    desirable = sum(bool(label) for label in labels)
    if desirable in (0, len(labels)):
        only = "desirable" if desirable else "undesirable"
        raise DataError(f"{where}: all {len(labels)} examples are {only}; unpaired (KTO) data needs both classes "
                        "(check the label column, or data.desirable_fraction for the shapes world)")
