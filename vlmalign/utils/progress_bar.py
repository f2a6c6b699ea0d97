"""Lightning's rich progress bar with an epoch label that reads right when a run is limited by steps.

Runs here stop at ``trainer.max_steps`` with ``max_epochs=-1``, and Lightning labels the bar "Epoch 1/-2"
(``max_epochs - 1``). This one shows "Epoch 1" then; with a real epoch limit it is Lightning's label.
"""

from __future__ import annotations

from pytorch_lightning.callbacks import RichProgressBar


class ProgressBar(RichProgressBar):
    def _get_train_description(self, current_epoch: int) -> str:
        description = super()._get_train_description(current_epoch)
        max_epochs = self.trainer.max_epochs
        if max_epochs is not None and max_epochs < 0:
            description = description.replace(f"Epoch {current_epoch}/{max_epochs - 1}", f"Epoch {current_epoch}", 1)
        return description
