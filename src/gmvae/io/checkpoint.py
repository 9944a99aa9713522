"""Checkpoint files that survive a crash and never run code when loaded.

Lightning's own writer streams into the final file name, so a process killed
mid-save leaves a truncated ``last.ckpt``: the one file a resume needs. Here a
checkpoint goes to a temporary file, is fsynced and renamed into place
(:func:`gmvae.io.atomic.atomic_writer`): the previous checkpoint stays whole until
the new one is complete. Loading always uses ``torch.load(weights_only=True)``,
which rebuilds tensors and plain containers only; a file that would need
unpickling (and so could run code) is refused with a :class:`DataError`.

Training checkpoints are for resuming one's own runs. The shareable model format
is ``model.safetensors`` + ``model.json`` (:mod:`gmvae.io.model_file`).
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.cloud_io import get_filesystem

from gmvae.errors import ConfigError, DataError, DiskFullError
from gmvae.io.atomic import atomic_writer, remove_stale_temporaries

# A checkpoint's path, as Lightning's CheckpointIO takes it (its own alias is private).
CheckpointPath = str | Path

SHARE_HINT = (
    "Training checkpoints (*.ckpt) are for resuming your own runs; share models as "
    "model.safetensors + model.json (written by gmvae fit)."
)


def _is_local(path: CheckpointPath) -> bool:
    return isinstance(get_filesystem(path), LocalFileSystem)


class SafeCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` with atomic saves and weights-only loads (see the module doc)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: CheckpointPath, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or not _is_local(path):
            # Remote stores (s3://, ...) make an object visible only once it is complete.
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        try:
            with atomic_writer(path) as f:
                torch.save(checkpoint, f)
        except DiskFullError as exc:
            raise DiskFullError(
                f"{exc}; the checkpoints saved before are intact: free some space, then "
                "continue the run with --ckpt_path last"
            ) from exc
        remove_stale_temporaries(path)  # left by writers killed before their rename

    def load_checkpoint(
        self,
        path: CheckpointPath,
        map_location: Callable | None = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        if weights_only is False:
            raise ConfigError(
                "--weights_only false is not supported: gmvae never unpickles a checkpoint"
            )
        return load_checkpoint_safely(path, map_location)


def load_checkpoint_safely(path: CheckpointPath, map_location: Any = None) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with one clear :class:`DataError` per failure."""
    if not get_filesystem(path).exists(path):
        raise DataError(f"{path}: checkpoint not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols before refusing
            checkpoint = TorchCheckpointIO().load_checkpoint(
                path, map_location=map_location, weights_only=True
            )
    except pickle.UnpicklingError as exc:
        wanted = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if wanted is None:  # not a pickle stream at all (random bytes, another format)
            raise DataError(f"{path}: not a readable checkpoint (corrupt or not PyTorch)") from None
        raise DataError(
            f"{path}: refusing to load it: it holds Python objects that only unpickling could "
            f"rebuild (it asks for {wanted.group(1)}, which could run code), and gmvae never "
            f"unpickles files.\n{SHARE_HINT}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{path}: not a readable checkpoint (truncated or corrupt): {_first_line(exc)}"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise DataError(f"{path}: not a Lightning checkpoint (no 'state_dict' entry)")
    return checkpoint


def _first_line(exc: BaseException) -> str:
    """The first sentence of an error (torch appends paragraphs of advice)."""
    text = str(exc).strip()
    return text.splitlines()[0].split(". ")[0] if text else type(exc).__name__
