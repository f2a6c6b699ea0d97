"""Reference-policy strategies. ``NoReference`` serves reference-free objectives (SFT, nSFT)."""

from __future__ import annotations

from typing import ClassVar

from vlmalign.errors import ConfigError
from vlmalign.models.logprobs import ResponseStates
from vlmalign.objectives.base import LogProbs, Objective

MODEL_BACKED = "reference=frozen (a frozen copy of the initial policy) or reference=lora_disabled (a LoRA policy "\
               "with its adapters switched off)"


def batch_device(batch: dict):
    """The device a collated batch lives on (every batch has token views; not every one has pixels: Synth²)."""
    return next(iter(batch["views"].values()))["input_ids"].device


class ReferencePolicy:
    """Supplies s_ref for the views an objective asks for, and, where it runs a model, the reference's
    response-position states (``states``) for terms that need its per-token distributions.

    ``setup`` runs when the AlignmentModule is built (its backbone still holds the initial weights);
    ``prepare`` runs once before training with the data (the precomputed cache uses it).
    """

    name = "base"
    # Whether ``states`` works: only a strategy that runs a reference model has distributions to give;
    # a cache of summed log-probs (precomputed) does not.
    provides_states: ClassVar[bool] = False
    states_unavailable: ClassVar[str] = "it supplies only summed log-probs s_ref per sample and view"

    def setup(self, module) -> None:
        self.module = module

    @classmethod
    def serving_problems(cls, objective: Objective) -> list[str]:
        """Why this strategy cannot serve ``objective``, one message each (empty when it can). A classmethod,
        so that config validation can ask the class named by ``reference._target_`` before anything is built."""
        kl_terms = [n for n, t in objective.terms.items() if t.token_kl_views]
        if kl_terms and not cls.provides_states:
            return [f"objective terms {kl_terms} need a per-token KL to the reference, i.e. the reference policy's "
                    f"next-token distributions, which reference={cls.name} cannot give ({cls.states_unavailable}); "
                    f"choose {MODEL_BACKED}, or drop those terms"]
        return []

    def check_serves(self, objective: Objective) -> None:
        """A ConfigError, before anything is built, if this strategy cannot serve ``objective``."""
        problems = self.serving_problems(objective)
        if problems:
            raise ConfigError("; ".join(problems))

    def prepare(self, datamodule, views: tuple[str, ...], device=None) -> None:
        """Nothing to prepare by default."""

    def logps(self, batch: dict, views: tuple[str, ...]) -> LogProbs | None:  # pragma: no cover
        raise NotImplementedError

    def states(self, batch: dict, views: tuple[str, ...]) -> dict[str, ResponseStates]:
        """The reference's response-position hidden states (with its head), without gradients."""
        raise ConfigError(f"reference={self.name} cannot provide per-token distributions ({self.states_unavailable})"
                          f"; choose {MODEL_BACKED}")


class NoReference(ReferencePolicy):
    name = "none"
    states_unavailable = "there is no reference policy"

    @classmethod
    def serving_problems(cls, objective: Objective) -> list[str]:
        problems = super().serving_problems(objective)
        if objective.needs_reference:
            problems.append(
                f"objective terms {[n for n, t in objective.terms.items() if t.needs_reference]} need a reference "
                "policy but reference=none; choose reference=frozen, lora_disabled or precomputed"
            )
        return problems

    def logps(self, batch: dict, views: tuple[str, ...]) -> None:
        return None
