"""Crash injection for the resume and failure tests: a real SIGKILL, a disk that fills up."""

from __future__ import annotations

import contextlib
import errno
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


class FillDiskAtStep(L.Callback):
    """Fills the file system of ``filler`` (a small tmpfs in the tests) when training reaches
    global step ``step``: what another process writing to a shared disk does to a run."""

    def __init__(self, step: int, filler: str) -> None:
        self.step = step
        self.filler = Path(filler)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step != self.step or self.filler.exists():
            return
        block = bytes(1 << 16)
        with open(self.filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
        for size in (4096, 512, 1):  # the last partial blocks too
            with open(self.filler, "ab", buffering=0) as f, contextlib.suppress(OSError):
                while True:
                    f.write(bytes(size))


class TermAtStep(KillAtStep):
    """Sends SIGTERM to its own process (a preempted job) once, at global step ``step``."""

    def _kill(self, trainer, stage: str) -> None:
        if stage == self.during and trainer.global_step == self.step and not self.marker.exists():
            self.marker.write_text(f"terminated at step {self.step} ({stage})\n")
            os.kill(os.getpid(), signal.SIGTERM)
