"""Writers for small data files in the real formats (IDX, SVHN .mat) used by the tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import scipy.io


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, *, compress: bool | None = None) -> Path:
    data = idx_bytes(array)
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_mnist_like(
    root: Path, folder: str = "mnist", n_train: int = 60, n_test: int = 20
) -> Path:
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 256, (n, 28, 28))
        write_idx(root / folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


def write_svhn_mat(path: Path, n: int = 12, labels: np.ndarray | None = None) -> Path:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (32, 32, 3, n)).astype(np.uint8)
    y = (np.arange(n) % 10 + 1 if labels is None else labels).reshape(-1, 1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"X": x, "y": y})
    return path
