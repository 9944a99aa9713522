"""Reader for SVHN's ``train_32x32.mat`` / ``test_32x32.mat`` (MATLAB v5; label 10 is digit 0)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gmvae.data.matfile import read_mat_arrays
from gmvae.errors import DataError


def read_svhn_mat(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 in 0..9.

    Read with :func:`gmvae.data.matfile.read_mat_arrays` (numeric arrays only, no
    pickles, no crash on a corrupt file); any problem is a :class:`DataError`
    naming the file.
    """
    path = Path(path)
    try:
        mat = read_mat_arrays(path, ("X", "y"))
    except DataError as exc:
        raise DataError(f"{exc} (an SVHN .mat file was expected)") from None
    if "X" not in mat or "y" not in mat:
        raise DataError(f"{path}: expected variables 'X' and 'y', found {sorted(mat)}")
    x, y = mat["X"], mat["y"]
    for name, value in (("X", x), ("y", y)):
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "iuf":
            kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            raise DataError(f"{path}: '{name}' must be a numeric array, got {kind}")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise DataError(f"{path}: '{name}' contains NaN or Inf values")
    y = y.reshape(-1)
    if x.ndim != 4 or x.shape[:2] != (32, 32):
        raise DataError(f"{path}: 'X' must have shape (32, 32, 3, N), got {x.shape}")
    if x.shape[2] != 3:
        raise DataError(
            f"{path}: 'X' has {x.shape[2]} colour channel(s), SVHN images have 3 "
            f"(shape (32, 32, 3, N), got {x.shape})"
        )
    if x.shape[3] != len(y):
        raise DataError(f"{path}: {x.shape[3]} images but {len(y)} labels")
    if x.dtype != np.uint8:
        raise DataError(f"{path}: 'X' must be uint8 (0..255), got {x.dtype}")
    if len(y) and (y.min() < 1 or y.max() > 10 or (y != np.round(y)).any()):
        raise DataError(
            f"{path}: labels must be whole numbers in 1..10 (10 is digit 0), "
            f"found {y.min()}..{y.max()}"
        )
    images = np.ascontiguousarray(x.transpose(3, 2, 0, 1))  # (32, 32, 3, N) -> (N, 3, 32, 32)
    return images, (y.astype(np.int64) % 10)
