"""Crash injection for the resume tests: a real SIGKILL of the training process."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import lightning as L


class KillAtStep(L.Callback):
    """SIGKILLs its own process when training reaches global step ``step`` (before the step).

    It does so once: ``marker`` records the kill, so that re-running the very same
    command (the resume) trains through. ``during="validation"`` kills at the first
    validation batch run at that step instead (a kill between an epoch's last batch
    and the checkpoint saved after its validation).
    """

    def __init__(self, step: int, marker: str, during: str = "train") -> None:
        self.step = step
        self.marker = Path(marker)
        self.during = during

    def _kill(self, trainer, stage: str) -> None:
        if stage == self.during and trainer.global_step == self.step and not self.marker.exists():
            self.marker.write_text(f"killed at step {self.step} ({stage})\n")
            os.kill(os.getpid(), signal.SIGKILL)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._kill(trainer, "train")

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        if not trainer.sanity_checking:
            self._kill(trainer, "validation")
