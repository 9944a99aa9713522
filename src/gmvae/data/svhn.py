"""Reader for SVHN's ``train_32x32.mat`` / ``test_32x32.mat`` (MATLAB v5; label 10 is digit 0)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from gmvae.errors import DataError


def read_svhn_mat(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 in 0..9.

    ``scipy.io.loadmat`` reads MATLAB arrays only (no pickles); any parse failure
    becomes a :class:`DataError` naming the file.
    """
    path = Path(path)
    try:
        mat = scipy.io.loadmat(path, variable_names=("X", "y"))
    except Exception as exc:  # third-party parser boundary: every failure is a bad file
        raise DataError(f"{path}: not a readable SVHN .mat file: {exc}") from None
    if "X" not in mat or "y" not in mat:
        raise DataError(f"{path}: expected variables 'X' and 'y', found {sorted(mat)}")
    x, y = mat["X"], np.asarray(mat["y"]).reshape(-1)
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataError(f"{path}: 'X' must have shape (32, 32, 3, N), got {x.shape}")
    if x.shape[3] != len(y):
        raise DataError(f"{path}: {x.shape[3]} images but {len(y)} labels")
    if x.dtype != np.uint8:
        raise DataError(f"{path}: 'X' must be uint8, got {x.dtype}")
    if len(y) and (y.min() < 1 or y.max() > 10):
        raise DataError(
            f"{path}: labels must lie in 1..10 (10 is digit 0), found {y.min()}..{y.max()}"
        )
    images = np.ascontiguousarray(x.transpose(3, 2, 0, 1))  # (32, 32, 3, N) -> (N, 3, 32, 32)
    return images, (y.astype(np.int64) % 10)
