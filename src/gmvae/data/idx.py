"""Reader for the IDX format of MNIST and Fashion-MNIST (``.gz`` or raw), with strict checks."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from gmvae.errors import DataError

_UBYTE = 0x08
_CHUNK = 1 << 24  # 16 MiB: how much of a .gz is inflated at a time


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes into an array of its declared shape.

    Raises :class:`DataError` naming the file for a bad gzip stream, a bad magic
    number, a type other than unsigned byte, or a size that does not match the header.
    The header is checked before the data is read, and data is read in chunks up to
    the declared size only: a corrupt header or a gzip bomb cannot make it allocate
    more than the file really holds.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            compressed = f.read(2) == b"\x1f\x8b"
        with gzip.open(path, "rb") if compressed else path.open("rb") as f:
            return _read_idx_stream(path, f, None if compressed else path.stat().st_size)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None


def _read_idx_stream(path: Path, f: BinaryIO, file_size: int | None) -> np.ndarray:
    head = f.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    if head[2] != _UBYTE:
        raise DataError(f"{path}: IDX type 0x{head[2]:02x} is not supported (only unsigned byte)")
    ndim = head[3]
    dims = f.read(4 * ndim)
    if ndim == 0 or len(dims) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
    expected = math.prod(shape)  # Python int: no overflow
    if file_size is not None:  # uncompressed: compare sizes before reading anything
        found = file_size - 4 - 4 * ndim
    else:
        chunks, found = [], 0
        while found < expected:
            chunk = f.read(min(_CHUNK, expected - found))
            if not chunk:
                break
            chunks.append(chunk)
            found += len(chunk)
        if found == expected and f.read(1):  # reading to the end also checks the gzip CRC
            found += 1
    if found != expected:
        if found < expected:
            what = f"truncated: header says shape {shape} ({expected} bytes), found {found} bytes"
        else:
            more = found if file_size is not None else "more"
            what = f"has trailing bytes: header says shape {shape} ({expected} bytes), found {more}"
        raise DataError(f"{path}: {what}")
    data = f.read(expected) if file_size is not None else b"".join(chunks)
    if len(data) != expected:  # the file changed while being read
        raise DataError(f"{path}: changed while being read")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def read_idx_pair(
    images_path: Path, labels_path: Path, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 1, H, W) uint8 and labels (N,) int64, checked against each other."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise DataError(f"{images_path}: expected a 3-d image array, got shape {images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: expected a 1-d label array, got shape {labels.shape}")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    if len(labels) and labels.max() >= num_classes:
        raise DataError(f"{labels_path}: label {labels.max()} is out of range 0..{num_classes - 1}")
    return images[:, None].copy(), labels.astype(np.int64)
