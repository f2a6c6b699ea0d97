"""Objective terms: one class per term, maths in ``functional``."""

from vlmalign.objectives.base import Objective, ObjectiveOutput, ObjectiveTerm
from vlmalign.objectives.sft import SFTTerm

__all__ = ["Objective", "ObjectiveOutput", "ObjectiveTerm", "SFTTerm"]
