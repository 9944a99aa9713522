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
from typing import Any

import lightning as L
import numpy as np
import torch
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
