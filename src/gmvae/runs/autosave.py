"""The saves of ``last.ckpt`` after every epoch and within epochs, so that a crash loses
minutes, not an epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn


class AutosaveCheckpoint(ModelCheckpoint):
    """The writer of ``last.ckpt`` (``--autosave.*``): within epochs at its interval, never
    after an epoch's last batch, and after every epoch's validation.

    Lightning's best-model ``ModelCheckpoint`` rewrites ``last.ckpt`` only when it saves
    a new best, so without the save after each validation a run whose accuracy stopped
    rising would resume from its last best or in-epoch state, not its last epoch. Being a
    ``ModelCheckpoint`` it runs after the best-model one (Lightning orders checkpoint
    callbacks last, in their order), so the state it saves records this epoch's best.

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
        if trainer.is_last_batch:
            return
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if trainer.sanity_checking or trainer.fast_dev_run or trainer.state.fn != TrainerFn.FITTING:
            return
        if not self.save_last or self.dirpath is None:
            return
        # weights_only given, as ModelCheckpoint's own saves give it: left unset, Lightning
        # logs "`weights_only` was not set, defaulting to `False`" at every epoch, which
        # reads as if checkpoints were unpickled (they never are: gmvae.io.checkpoint).
        trainer.save_checkpoint(
            str(Path(self.dirpath) / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}"),
            weights_only=self.save_weights_only,
        )
