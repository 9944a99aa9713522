"""SIGTERM (a preempted job, ``scancel``, ``docker stop``): save ``last.ckpt``, then stop with
a status a job script can trust.

Lightning's own handler ends ``fit`` with ``SystemExit`` and status 0, without a checkpoint
when the signal comes mid-epoch, so a script that reruns the command until it succeeds
would take the unfinished run for a finished one. :class:`SigtermCheckpoint` takes the
signal over while training: at the end of the batch being trained it saves
``last.ckpt`` through the in-epoch writer (the same checkpoint a resume is tested on) and
raises :class:`Preempted`, which ``gmvae fit`` reports in one line with exit status
:data:`PREEMPTED_STATUS` (128 + SIGTERM, what a shell reports for a process the signal
ended). After an epoch's last batch nothing is saved there: the epoch's own checkpoint
comes moments later, after its validation, and the run stops before the next batch.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from gmvae.errors import TrainingError
from gmvae.runs.autosave import AutosaveCheckpoint

PREEMPTED_STATUS = 128 + signal.SIGTERM


class Preempted(TrainingError):
    """Training stopped on SIGTERM; ``last.ckpt`` holds where it stopped."""

    exit_status = PREEMPTED_STATUS


class SigtermCheckpoint(L.Callback):
    """On SIGTERM, save ``last.ckpt`` at the next batch boundary and raise :class:`Preempted`.

    Args:
        writer: the checkpoint callback whose ``last.ckpt`` to write; None: the first
            :class:`ModelCheckpoint` that saves one.
    """

    def __init__(self, writer: ModelCheckpoint | None = None) -> None:
        self.writer = writer
        self.received = False
        self._pending = False
        self._previous: Any = None
        self._trainer: L.Trainer | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._trainer = trainer
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        # A signal during the sanity check reached Lightning's handler: stop before training.
        self.received = self.received or trainer.received_sigterm
        self._pending = self._decided(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._restore()

    def _restore(self) -> None:
        if self._previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._previous)
        self._previous = None

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        launcher = self._trainer.strategy.launcher if self._trainer is not None else None
        if not self.received and launcher is not None:
            launcher.kill(signum)  # the ranks this process started get it too, as in Lightning
        self.received = True

    def _decided(self, trainer: L.Trainer) -> bool:
        """Every rank stops at the same batch (rank 0 may be the only one signalled)."""
        if trainer.world_size > 1:
            return bool(trainer.strategy.reduce_boolean_decision(self.received, all=False))
        return self.received

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._pending:
            # Signalled after the previous epoch's last batch (its checkpoint is saved since),
            # or before the first batch: nothing was trained since the last checkpoint.
            raise Preempted(self._message(trainer, self._last_path(trainer)))

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if not self._decided(trainer):
            return
        if trainer.is_last_batch:
            self._pending = True  # the epoch's validation and checkpoint come first
            return
        writer = self._writer(trainer)
        if writer is None:
            raise Preempted(self._message(trainer, self._last_path(trainer)))
        writer._save_last_checkpoint(trainer, writer._monitor_candidates(trainer))
        raise Preempted(self._message(trainer, writer.last_model_path))

    def _writer(self, trainer: L.Trainer) -> ModelCheckpoint | None:
        """The in-epoch writer of last.ckpt, else any checkpoint callback that writes one."""
        if self.writer is not None:
            return self.writer
        writers = [c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)]
        writers = [c for c in writers if c.save_last]
        autosave = [c for c in writers if isinstance(c, AutosaveCheckpoint)]
        return (autosave or writers or [None])[0]

    def _last_path(self, trainer: L.Trainer) -> str | None:
        writers = [c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)]
        return next((c.last_model_path for c in writers if c.last_model_path), None)

    @staticmethod
    def _message(trainer: L.Trainer, saved: str | None) -> str:
        step = trainer.global_step
        if saved is None:
            return (
                f"training stopped by SIGTERM at global step {step}; no checkpoint had been "
                "saved yet, so the same command starts over"
            )
        return (
            f"training stopped by SIGTERM at global step {step}, saved in {saved}: run the "
            "same command with --ckpt_path last to continue"
        )
