"""Objective terms: one class per term, maths in ``functional`` (and its siblings ``functional_*``)."""

from vlmalign.objectives.anchor import AnchorTerm
from vlmalign.objectives.base import Objective, ObjectiveOutput, ObjectiveTerm
from vlmalign.objectives.bco import BCOTerm
from vlmalign.objectives.conditional import ConditionalTerm
from vlmalign.objectives.dpo import DPOTerm, HingeTerm, IPOTerm
from vlmalign.objectives.dpo_positive import DPOPositiveTerm, LengthNormalisedDPOTerm
from vlmalign.objectives.kl import TokenKLTerm
from vlmalign.objectives.kto import KTOPairTerm, KTOTerm
from vlmalign.objectives.load_balancing import LoadBalancingTerm
from vlmalign.objectives.nsft import NegativeSFTTerm
from vlmalign.objectives.orpo import ORPOTerm
from vlmalign.objectives.policy_gradient import PolicyGradientTerm
from vlmalign.objectives.reward_model import BradleyTerryTerm
from vlmalign.objectives.sft import SFTTerm
from vlmalign.objectives.simpo import SimPOTerm
from vlmalign.objectives.synth2 import Synth2CaptioningTerm

__all__ = ["AnchorTerm", "BCOTerm", "BradleyTerryTerm", "ConditionalTerm", "DPOPositiveTerm", "DPOTerm", "HingeTerm",
           "IPOTerm", "KTOPairTerm", "KTOTerm", "LengthNormalisedDPOTerm", "LoadBalancingTerm", "NegativeSFTTerm",
           "ORPOTerm", "Objective", "ObjectiveOutput", "ObjectiveTerm", "PolicyGradientTerm", "SFTTerm", "SimPOTerm",
           "Synth2CaptioningTerm", "TokenKLTerm"]
