"""Objective terms: one class per term, maths in ``functional``."""

from vlmalign.objectives.anchor import AnchorTerm
from vlmalign.objectives.base import Objective, ObjectiveOutput, ObjectiveTerm
from vlmalign.objectives.conditional import ConditionalTerm
from vlmalign.objectives.dpo import DPOTerm, HingeTerm, IPOTerm
from vlmalign.objectives.kl import TokenKLTerm
from vlmalign.objectives.nsft import NegativeSFTTerm
from vlmalign.objectives.sft import SFTTerm
from vlmalign.objectives.synth2 import Synth2CaptioningTerm

__all__ = ["AnchorTerm", "ConditionalTerm", "DPOTerm", "HingeTerm", "IPOTerm", "NegativeSFTTerm", "Objective",
           "ObjectiveOutput", "ObjectiveTerm", "SFTTerm", "Synth2CaptioningTerm", "TokenKLTerm"]
