"""The in-epoch saves of ``last.ckpt``, so that a crash loses minutes, not an epoch."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from gmvae.compat import epoch_progress


class AutosaveCheckpoint(ModelCheckpoint):
    """The in-epoch writer of ``last.ckpt`` (``--autosave.*``): a ``ModelCheckpoint`` that
    never saves after an epoch's last batch.

    The checkpoint after an epoch's validation comes moments later; one saved between
    the last batch and that validation would resume past the validation (Lightning
    fast-forwards it), so a kill in that window would skip the epoch's validation. The
    previous in-epoch save replays the last batches and validates instead.
    """

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if epoch_progress(trainer).is_last_batch:
            return
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
