"""nSFT negative supervision (arXiv 2411.14797): the builder G(y_l; y_w, Q) and the error codebook Q.

- ``codebook``: Q as data (codebook.yaml) -> ``Codebook`` / ``ErrorType``;
- ``interface``: ``NegativeBuilder``, ``PreferenceSample``, ``Turn``, ``RejectedSample``;
- ``shapes_rules``: exact, rule-based G for the shapes world (ground-truth scenes);
- ``llm``: LLM-prompted G for real data (OpenAI-compatible HTTP or local HF causal LM, cached);
- ``cli``: ``vlmalign-build-negatives``, a preference dataset -> an nSFT dataset (JSON lines, resumable).
"""

from vlmalign.negatives.codebook import Codebook, ErrorType, load_codebook
from vlmalign.negatives.interface import BuildOutcome, NegativeBuilder, PreferenceSample, RejectedSample, Turn
from vlmalign.negatives.shapes_rules import ShapesRuleBuilder, corrective_turns
from vlmalign.negatives.stats import BuildStats

__all__ = [
    "BuildOutcome", "BuildStats", "Codebook", "ErrorType", "NegativeBuilder", "PreferenceSample", "RejectedSample",
    "ShapesRuleBuilder", "Turn", "corrective_turns", "load_codebook",
]
