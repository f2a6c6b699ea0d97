"""Synth²'s captioning term over mixed real and synthetic samples (arXiv 2403.07750, §3.3)."""

from __future__ import annotations

from vlmalign.objectives.base import LogProbs, ObjectiveOutput, ObjectiveTerm
from vlmalign.objectives.functional import mixed_source_nll, token_mean


class Synth2CaptioningTerm(ObjectiveTerm):
    """NLL of the captions of view ``chosen`` (real images) and view ``synthetic`` (generated embeddings), pooled
    token by token (``functional.mixed_source_nll``); logs each source's own NLL so a dashboard shows whether the
    model fits synthetic samples at the cost of real ones."""

    views = ("chosen", "synthetic")
    needs_reference = False

    def __init__(self, weight: float = 1.0, synthetic_weight: float = 1.0) -> None:
        super().__init__(weight)
        if synthetic_weight < 0:
            raise ValueError(f"objective synth2 term: synthetic_weight={synthetic_weight} must be >= 0")
        self.synthetic_weight = float(synthetic_weight)

    def __call__(self, logps: LogProbs, ref: LogProbs | None) -> ObjectiveOutput:
        real, synthetic = logps["chosen"], logps["synthetic"]
        loss = mixed_source_nll(real.sum, real.count, synthetic.sum, synthetic.count, self.synthetic_weight)
        metrics = {"nll": loss.detach()}
        for name, source in (("real", real), ("synthetic", synthetic)):
            if int(source.count.sum()):  # a batch without this source has no NLL for it (not 0)
                metrics[f"nll/{name}"] = -token_mean(source.sum, source.count).detach()
        return ObjectiveOutput(loss, metrics)
