"""AlignmentModule: runs the forward passes the objective asks for, calls it, logs.

One LightningModule for every objective (docs/design.md, rule 3). Per step it encodes each distinct image
once, runs all requested views (chosen, rejected, negatives, ...) in one concatenated forward, and
hands the per-view response log-probs to the objective, together with the reference policy's when
needed. A term that regularises token by token (``token_kl_views``) gets the summed per-token
KL(π ‖ π_ref) of its views in ``logps[view].kl``, computed here from the policy's and the
reference's response-position states. A term that needs an MoE policy's router logits (``needs_router_logits``,
Branch-Train-MiX's load balancing) gets them recorded from the same forward.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

import pytorch_lightning as pl
import torch
from torch import Tensor

from vlmalign.models.backbone import VisionLanguageBackbone
from vlmalign.models.logprobs import response_token_kl, states_logps
from vlmalign.models.router_logits import record_router_logits, router_modules
from vlmalign.models.views import view_states
from vlmalign.objectives.base import Objective, ObjectiveOutput
from vlmalign.reference.base import NoReference, ReferencePolicy


class TrainingModule(pl.LightningModule):
    """What every vlmalign LightningModule shares: ``step(batch) -> ObjectiveOutput`` is trained on and logged as
    ``{stage}/loss`` and ``{stage}/<metric>``; the optimizer and scheduler come from their config factories and
    train every parameter that requires a gradient. ``AlignmentModule`` below; the reward model's and the online-RL
    modules in ``vlmalign/rl/``."""

    def __init__(self, optimizer: Callable[..., torch.optim.Optimizer],
                 scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None) -> None:
        super().__init__()
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler

    def step(self, batch: dict) -> ObjectiveOutput:  # pragma: no cover
        raise NotImplementedError

    def _log_output(self, stage: str, out: ObjectiveOutput, batch_size: int) -> None:
        on_step = stage == "train"
        # Epoch-level (validation) values are averaged over ranks; without it each rank logs its own shard's mean.
        sync = dict(on_step=on_step, on_epoch=not on_step, batch_size=batch_size, sync_dist=not on_step)
        self.log(f"{stage}/loss", out.loss.detach(), prog_bar=True, **sync)
        self.log_dict({f"{stage}/{k}": v for k, v in out.metrics.items()}, **sync)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        out = self.step(batch)
        self._log_output("train", out, len(batch["sample_ids"]))
        return out.loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._log_output("val", self.step(batch), len(batch["sample_ids"]))

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params)
        if self.scheduler_factory is None:
            return optimizer
        total_steps = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer=optimizer, num_training_steps=total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class AlignmentModule(TrainingModule):
    def __init__(
        self,
        backbone: VisionLanguageBackbone,
        objective: Objective,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        reference: ReferencePolicy | None = None,
        share_prefix: bool = True,
    ) -> None:
        super().__init__(optimizer, scheduler)
        self.share_prefix = share_prefix  # see view_states; the reference's forwards follow the same setting
        # from_pretrained returns a model in eval mode and Lightning (>= 2.3) keeps each module's mode, so
        # the policy must be switched to train mode here or dropout would silently stay off.
        self.backbone = backbone.train()
        self.objective = objective
        self.reference = reference if reference is not None else NoReference()
        self.reference.check_serves(objective)  # fail now, not after setup and a first evaluation
        self.reference.setup(self)
        if objective.needs_router_logits:
            router_modules(backbone)  # a dense model given the load-balancing term fails now

    def step(self, batch: dict) -> ObjectiveOutput:
        objective = self.objective
        recorder = record_router_logits(self.backbone) if objective.needs_router_logits else nullcontext()
        with recorder as recording:
            states = view_states(self.backbone, batch, objective.views, self.share_prefix)
        router = recording.result() if recording is not None else None
        logps = {view: states_logps(s) for view, s in states.items()}
        ref = self.reference.logps(batch, objective.views) if objective.needs_reference else None
        if objective.token_kl_views:  # per-token KL(π ‖ π_ref) needs the reference's states, not just s_ref
            ref_states = self.reference.states(batch, objective.token_kl_views)
            for view in objective.token_kl_views:
                logps[view] = logps[view]._replace(kl=response_token_kl(states[view], ref_states[view]))
        return objective(logps, ref, router)
