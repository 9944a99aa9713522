"""A strict reader for the numeric arrays of a MATLAB v5 ``.mat`` file (SVHN's format).

``scipy.io.loadmat`` would do, but a fuzz test (tests/data/test_reader_fuzz.py) found
corrupt files on which it crashes the interpreter (a segmentation fault in its
compiled reader, scipy 1.17): a bad download must give an error, not kill the
process. This reader is pure Python + NumPy, reads numeric matrices only (no cells,
structs, objects or sparse arrays), checks every tag against the bytes really
there before using it, and allocates as data arrives, never from a declared size.

Format: MATLAB "MAT-File Format" (MathWorks, 2019), chapter 1: a 128-byte header,
then data elements (an 8-byte tag, or a 4-byte "small" tag holding up to 4 bytes);
a matrix holds array flags, dimensions, a name and the real part; a compressed
element is a zlib stream holding one matrix element.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO

import numpy as np

from gmvae.errors import DataError

MI_INT8, MI_INT32, MI_UINT32, MI_MATRIX, MI_COMPRESSED = 1, 5, 6, 14, 15
_STORAGE = {
    1: "i1",
    2: "u1",
    3: "i2",
    4: "u2",
    5: "i4",
    6: "u4",
    7: "f4",
    9: "f8",
    12: "i8",
    13: "u8",
}
_CLASS = {
    6: "f8",
    7: "f4",
    8: "i1",
    9: "u1",
    10: "i2",
    11: "u2",
    12: "i4",
    13: "u4",
    14: "i8",
    15: "u8",
}
_COMPLEX_FLAG = 0x0800
_CHUNK = 1 << 24  # 16 MiB of compressed input at a time


class _Bad(Exception):
    """A structural problem; read_mat_arrays turns it into a DataError naming the file."""


def read_mat_arrays(path: str | Path, names: Collection[str]) -> dict[str, np.ndarray]:
    """The numeric arrays called ``names`` (those present) from a MAT v5 file.

    Raises :class:`DataError` naming the file for anything else: another format
    (v4, v7.3/HDF5), a truncated or corrupt file, or a wanted variable that is not a
    real numeric matrix.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            return _read(f, path.stat().st_size, set(names))
    except _Bad as exc:
        raise DataError(f"{path}: not a readable MAT v5 file: {exc}") from None
    except (OSError, zlib.error, struct.error, ValueError) as exc:
        raise DataError(f"{path}: not a readable MAT v5 file: {exc}") from None


def _read(f: BinaryIO, size: int, names: set[str]) -> dict[str, np.ndarray]:
    header = f.read(128)
    if len(header) < 128:
        raise _Bad("too short for a MAT v5 header (a MAT v4 file, or not a .mat file)")
    if header.startswith(b"MATLAB 7.3") or header[:4] == b"\x89HDF":
        raise _Bad("MAT v7.3 (HDF5) files are not supported; save it with -v7")
    order = {b"IM": "<", b"MI": ">"}.get(header[126:128])
    if order is None:
        raise _Bad("no MAT v5 header (a MAT v4 file, or not a .mat file)")
    found: dict[str, np.ndarray] = {}
    pos = 128
    while pos < size and len(found) < len(names):
        if size - pos < 8:
            raise _Bad(f"truncated element tag at byte {pos}")
        f.seek(pos)
        mdtype, nbytes = struct.unpack(order + "II", f.read(8))
        if nbytes > size - pos - 8:
            raise _Bad(f"element at byte {pos} declares {nbytes} bytes, the file ends before")
        if mdtype == MI_COMPRESSED:
            name, array = _compressed_matrix(f, nbytes, order, names)
        elif mdtype == MI_MATRIX:
            name, array = _matrix(memoryview(f.read(nbytes)), order, names)
        else:
            name, array = None, None  # another top-level element: skipped
        if name is not None and array is not None:
            found[name] = array
        pos += 8 + nbytes
    return found


def _compressed_matrix(
    f: BinaryIO, nbytes: int, order: str, names: set[str]
) -> tuple[str | None, np.ndarray | None]:
    """Inflate just enough to read the name; inflate the rest only for a wanted variable."""
    inflater = zlib.decompressobj()
    left = nbytes
    out = bytearray()

    def inflate_to(n: int) -> None:
        nonlocal left
        while len(out) < n:
            if inflater.unconsumed_tail:
                data = inflater.unconsumed_tail
            elif left:
                data = f.read(min(_CHUNK, left))
                left -= len(data)
                if not data:
                    raise _Bad("compressed element cut short")
            else:
                raise _Bad("compressed element inflates to fewer bytes than its matrix declares")
            out.extend(inflater.decompress(data, n - len(out)))

    inflate_to(8)
    mdtype, inner = struct.unpack(order + "II", bytes(out[:8]))
    if mdtype != MI_MATRIX:
        raise _Bad(f"a compressed element holds type {mdtype}, not a matrix")
    inflate_to(min(8 + inner, 8 + 512))  # flags, dimensions and name come first
    name = _matrix_name(memoryview(out)[8:], order)
    if name not in names:
        return None, None
    inflate_to(8 + inner)
    return _matrix(memoryview(out)[8 : 8 + inner], order, names)


def _subelement(buf: memoryview, pos: int, order: str) -> tuple[int, memoryview, int]:
    """(type, data, next position) of the subelement at ``pos`` of a matrix."""
    if len(buf) - pos < 8:
        raise _Bad("matrix cut short")
    word, nbytes = struct.unpack_from(order + "II", buf, pos)
    if word >> 16:  # small data element: 2-byte size, 2-byte type, data in the next 4
        size, mdtype = word >> 16, word & 0xFFFF
        if size > 4:
            raise _Bad("small data element larger than 4 bytes")
        return mdtype, buf[pos + 4 : pos + 4 + size], pos + 8
    end = pos + 8 + nbytes
    if end > len(buf):
        raise _Bad("matrix subelement runs past its matrix")
    return word, buf[pos + 8 : end], pos + 8 + (nbytes + 7) // 8 * 8


def _matrix_header(buf: memoryview, order: str) -> tuple[int, int, tuple[int, ...], str, int]:
    """(class, flags, dims, name, position of the real part) of a matrix element's data."""
    mdtype, flags, pos = _subelement(buf, 0, order)
    if mdtype != MI_UINT32 or len(flags) != 8:
        raise _Bad("matrix without array flags")
    flag_word = struct.unpack_from(order + "I", flags)[0]
    mdtype, dims_raw, pos = _subelement(buf, pos, order)
    if mdtype != MI_INT32 or not dims_raw or len(dims_raw) % 4:
        raise _Bad("matrix without dimensions")
    dims = struct.unpack_from(order + f"{len(dims_raw) // 4}i", dims_raw)
    if any(d < 0 for d in dims):
        raise _Bad(f"negative dimension in {dims}")
    mdtype, raw_name, pos = _subelement(buf, pos, order)
    if mdtype != MI_INT8:
        raise _Bad("matrix without a name")
    return flag_word & 0xFF, flag_word, dims, bytes(raw_name).decode("latin-1"), pos


def _matrix_name(buf: memoryview, order: str) -> str | None:
    try:
        return _matrix_header(buf, order)[3]
    except _Bad:
        return None  # not enough inflated yet for a long name: read it in full


def _matrix(buf: memoryview, order: str, names: set[str]) -> tuple[str | None, np.ndarray | None]:
    cls, flags, dims, name, pos = _matrix_header(buf, order)
    if name not in names:
        return None, None
    if cls not in _CLASS:
        raise _Bad(f"variable {name!r} is not a numeric array (MATLAB class {cls})")
    if flags & _COMPLEX_FLAG:
        raise _Bad(f"variable {name!r} is complex")
    mdtype, data, _ = _subelement(buf, pos, order)
    if mdtype not in _STORAGE:
        raise _Bad(f"variable {name!r} has data of unknown type {mdtype}")
    storage = np.dtype(order + _STORAGE[mdtype])
    count = int(np.prod(dims, dtype=object))
    if count * storage.itemsize != len(data):
        raise _Bad(f"variable {name!r} of shape {dims} holds {len(data)} bytes of {storage}")
    array = np.frombuffer(data, dtype=storage).reshape(dims, order="F")
    return name, array.astype(_CLASS[cls], copy=False)  # read-only when no cast was needed
