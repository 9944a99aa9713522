"""Random-number state in checkpoints, so that a resumed run draws the same noise.

Lightning checkpoints the weights, the optimizer, the loops and (through
:class:`gmvae.data.sampler.StatefulDataLoader`) the position in the epoch, but not
the global random generators, from which the model draws its Gumbel-Softmax and
reparameterisation noise. :class:`RNGState` adds them (torch CPU and CUDA, NumPy,
Python) to every checkpoint.

They are put back just before the first training batch after the resume, not when
the checkpoint is read: between a save and the next training step the original
run draws nothing from these generators (validation runs in eval mode, the data
loaders have generators of their own), so this is the one point at which both runs
are in the same state whatever Lightning does in between on a restart.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_warn


def capture_rng_state() -> dict[str, Any]:
    """The global generators' state as tensors and plain types (loads with weights_only=True)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(
        (
            n["kind"],
            n["keys"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    random.setstate(_as_tuples(state["python"]))
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
        else:
            rank_zero_warn(
                f"the checkpoint holds the CUDA random state of {len(cuda)} devices, this machine "
                f"has {torch.cuda.device_count()}: CUDA random draws will differ from the original run"
            )


def _as_tuples(value: Any) -> Any:
    """random.setstate wants the nested tuples that getstate gave (a checkpoint may hold lists)."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuples(v) for v in value)
    return value


class RNGState(L.Callback):
    """Saves the global random state in every checkpoint and restores it on resume."""

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return capture_rng_state()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._pending is not None:
            restore_rng_state(self._pending)
            self._pending = None


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
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            return
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if trainer.sanity_checking or trainer.fast_dev_run or trainer.state.fn != TrainerFn.FITTING:
            return
        if not self.save_last or self.dirpath is None:
            return
        trainer.save_checkpoint(
            str(Path(self.dirpath) / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}")
        )
