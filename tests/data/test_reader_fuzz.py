"""Property tests: the IDX and SVHN .mat readers meet truncated and corrupted files with a
DataError naming the file, never another exception, a hang, or a huge allocation."""

from __future__ import annotations

import contextlib
import gzip
import os
import signal
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gmvae.data.idx import read_idx, read_idx_pair
from gmvae.data.svhn import read_svhn_mat
from gmvae.errors import DataError

from .writers import idx_bytes, write_svhn_mat

FUZZ = settings(
    max_examples=int(os.environ.get("GMVAE_FUZZ_EXAMPLES", "150")),  # more for a deeper search
    deadline=None,  # the alarm below bounds each example instead
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
SECONDS_PER_EXAMPLE = 5


class Hang(BaseException):
    """Not an Exception: no ``except Exception`` in a reader can swallow it."""


@contextlib.contextmanager
def no_hang(seconds: int = SECONDS_PER_EXAMPLE):
    """Fail (rather than hang the suite) if the block runs longer than ``seconds``."""

    def _timeout(signum, frame):
        raise Hang(f"reader still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _corrupt(data: bytes, cut: int | None, flips: list[tuple[int, int]]) -> bytes:
    """Flip bits at some positions (xor with a non-zero byte), then maybe truncate."""
    out = bytearray(data)
    for pos, xor in flips:
        out[pos % len(out)] ^= xor
    if cut is not None:
        out = out[: cut % (len(out) + 1)]
    return bytes(out)


corruption = dict(
    cut=st.none() | st.integers(min_value=0),
    flips=st.lists(
        st.tuples(st.integers(min_value=0), st.integers(min_value=1, max_value=255)), max_size=4
    ),
)

_IMAGES = np.random.default_rng(0).integers(0, 256, (6, 28, 28)).astype(np.uint8)
_LABELS = np.array([0, 1, 2, 3, 4, 9], dtype=np.uint8)
IDX_FILES = {
    "images.idx": idx_bytes(_IMAGES),
    "images.gz": gzip.compress(idx_bytes(_IMAGES)),
    "labels.idx": idx_bytes(_LABELS),
    "labels.gz": gzip.compress(idx_bytes(_LABELS)),
}


def _read_and_check_idx(path: Path) -> None:
    """A file that still parses must give an array of exactly its declared size."""
    array = read_idx(path)
    assert array.dtype == np.uint8 and array.ndim >= 1


@FUZZ
@given(name=st.sampled_from(sorted(IDX_FILES)), **corruption)
def test_idx_reader_corruptions_end_in_data_error(tmp_path, name, cut, flips):
    path = tmp_path / name
    path.write_bytes(_corrupt(IDX_FILES[name], cut, flips))
    with no_hang():
        try:
            _read_and_check_idx(path)
        except DataError as exc:
            assert str(path) in str(exc)


@FUZZ
@given(**corruption)
def test_idx_pair_corruptions_end_in_data_error(tmp_path, cut, flips):
    images, labels = tmp_path / "i.gz", tmp_path / "l.gz"
    images.write_bytes(IDX_FILES["images.gz"])
    labels.write_bytes(_corrupt(IDX_FILES["labels.gz"], cut, flips))
    with no_hang():
        try:
            x, y = read_idx_pair(images, labels, 10)
        except DataError as exc:
            assert str(labels) in str(exc) or str(images) in str(exc)
        else:
            assert x.shape == (6, 1, 28, 28) and y.shape == (6,) and y.max() < 10


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_huge_declared_size_fails_fast_without_allocating(tmp_path, compress):
    """A header that declares 2**32 x 2**32 x 2**32 bytes: refused from the header alone."""
    header = bytes([0, 0, 0x08, 3]) + (0xFFFFFFFF).to_bytes(4, "big") * 3
    data = header + bytes(100)
    path = tmp_path / ("huge.gz" if compress else "huge")
    path.write_bytes(gzip.compress(data) if compress else data)
    with no_hang(2), pytest.raises(DataError, match="truncated: header says shape"):
        read_idx(path)


def test_gzip_bomb_is_not_decompressed_beyond_the_declared_size(tmp_path):
    """A small .gz that inflates to 64 MiB, but whose header declares 10 bytes."""
    header = bytes([0, 0, 0x08, 1]) + (10).to_bytes(4, "big")
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip container
    body = packer.compress(header) + b"".join(packer.compress(bytes(1 << 20)) for _ in range(64))
    path = tmp_path / "bomb.gz"
    path.write_bytes(body + packer.flush())
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with no_hang(5), pytest.raises(DataError, match="has trailing bytes"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20  # inflating it all would take 64 MiB


@pytest.fixture(scope="module")
def mat_files(tmp_path_factory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("mat")
    plain = write_svhn_mat(root / "plain.mat", n=4)
    import scipy.io

    x = np.random.default_rng(1).integers(0, 256, (32, 32, 3, 4)).astype(np.uint8)
    y = np.array([[1], [2], [10], [5]], dtype=np.uint8)
    scipy.io.savemat(root / "zipped.mat", {"X": x, "y": y}, do_compression=True)
    return {"plain": plain.read_bytes(), "zipped": (root / "zipped.mat").read_bytes()}


@FUZZ
@given(kind=st.sampled_from(["plain", "zipped"]), **corruption)
def test_svhn_reader_corruptions_end_in_data_error(tmp_path, mat_files, kind, cut, flips):
    path = tmp_path / "train_32x32.mat"
    path.write_bytes(_corrupt(mat_files[kind], cut, flips))
    with no_hang():
        try:
            images, labels = read_svhn_mat(path)
        except DataError as exc:
            assert str(path) in str(exc)
        else:
            assert images.dtype == np.uint8 and images.shape[1:] == (3, 32, 32)
            assert labels.dtype == np.int64 and len(labels) == len(images)
            assert labels.min() >= 0 and labels.max() <= 9
