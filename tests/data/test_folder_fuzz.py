"""Property tests: the image-folder reader meets damaged image files and odd ``labels.csv``
tables with a skipped file or a DataError naming the table, never another exception or a
hang; every readable image is kept and every unreadable one reported."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from gmvae.config import FolderConfig
from gmvae.data.folders import load_folder, scan_folder
from gmvae.data.images import SkippedFilesWarning, decode_image
from gmvae.errors import DataError

from .test_reader_fuzz import FUZZ, _corrupt, no_hang

FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")


def _image_bytes(fmt: str, size: tuple[int, int] = (12, 9), mode: str = "L") -> bytes:
    pixels = (np.arange(size[0] * size[1]) % 251).astype(np.uint8).reshape(size[1], size[0])
    image = Image.fromarray(pixels).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _huge_png(width: int, height: int) -> bytes:
    """A PNG header declaring ``width x height`` pixels, with almost no data behind it."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


SAMPLES = {fmt: _image_bytes(fmt) for fmt in FORMATS}
corruption = dict(
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=4096)),
    flips=st.lists(
        st.tuples(st.integers(min_value=0, max_value=1 << 20), st.integers(1, 255)), max_size=6
    ),
)


@FUZZ
@given(fmt=st.sampled_from(FORMATS), **corruption)
def test_a_damaged_image_decodes_or_is_a_value_error(tmp_path, fmt, cut, flips):
    path = tmp_path / f"x.{fmt.lower()}"
    path.write_bytes(_corrupt(SAMPLES[fmt], cut, flips))
    with no_hang(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's own warnings on odd headers
        try:
            array = decode_image(path, 8, 1)
        except ValueError:
            return
    assert array.shape == (1, 8, 8) and array.dtype == np.uint8


@pytest.mark.parametrize(
    "data",
    [
        b"",  # zero bytes
        _image_bytes("PNG", (1, 1)),  # one pixel
        _image_bytes("PNG", (1, 300), "RGBA"),  # a line
        _huge_png(100_000, 100_000),  # declares 10^10 pixels (a decompression bomb)
        _huge_png(20_000, 1),  # wide, truncated data
        "café".encode("utf-16"),  # text
    ],
    ids=["zero-byte", "1x1", "1x300-rgba", "huge", "wide-truncated", "text"],
)
def test_edge_case_images_decode_or_fail_fast(tmp_path, data):
    path = tmp_path / "edge.png"
    path.write_bytes(data)
    with no_hang(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            array = decode_image(path, 8, 3)
        except ValueError as exc:
            assert str(exc)  # a reason to list in the warning
            return
    assert array.shape == (3, 8, 8)


def _folder(root, extra: bytes | None = None) -> list[str]:
    """Two classes of good images, unlabeled ones, and maybe a fuzzed extra file."""
    names = []
    for i in range(12):
        rel = f"{'ab'[i % 2]}/img{i}.png" if i < 8 else f"unlabeled/u{i}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(SAMPLES["PNG"])
        names.append(rel)
    if extra is not None:
        (root / "unlabeled" / "fuzzed.png").write_bytes(extra)
    return names


@settings(FUZZ, max_examples=min(FUZZ.max_examples, 40))
@given(fmt=st.sampled_from(FORMATS), **corruption)
def test_a_folder_keeps_every_good_image_and_reports_every_bad_one(
    tmp_path_factory, fmt, cut, flips
):
    root = tmp_path_factory.mktemp("images")
    good = _folder(root, _corrupt(SAMPLES[fmt], cut, flips))
    config = FolderConfig(image_size=6, cache_dir=str(root.parent / f"cache-{root.name}"))
    with no_hang(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        splits = load_folder(root, config, val_fraction=0.2)
    kept = [f for part in splits.files.values() for f in part]
    skipped = [name for name, _ in splits.skipped]
    assert set(good) <= set(kept)
    assert sorted(kept + skipped) == sorted([*good, "unlabeled/fuzzed.png"])
    if skipped:
        assert any(issubclass(w.category, SkippedFilesWarning) for w in caught)


cells = st.one_of(
    st.sampled_from(["a/img0.png", "img9.png", "unlabeled/u8.png", "missing.png", "a", "b"]),
    st.text(max_size=12),
)
rows = st.lists(st.lists(cells, min_size=0, max_size=3), max_size=8)


@FUZZ
@given(
    rows=rows,
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252"]),
    header=st.booleans(),
    quoting=st.sampled_from(["plain", "quoted"]),
)
def test_any_labels_table_is_read_or_refused_naming_it(
    tmp_path_factory, rows, encoding, header, quoting
):
    root = tmp_path_factory.mktemp("csv")
    _folder(root)
    (root / "img9.png").write_bytes(SAMPLES["PNG"])
    quote = '"' if quoting == "quoted" else ""
    lines = ["filename,label"] if header else []
    lines += [",".join(f"{quote}{c}{quote}" for c in row) for row in rows]
    try:
        data = ("\n".join(lines) + "\n").encode(encoding)
    except UnicodeEncodeError:
        return
    (root / "labels.csv").write_bytes(data)
    with no_hang():
        try:
            listing = scan_folder(root)
        except DataError as exc:
            assert "labels.csv" in str(exc) or str(root) in str(exc)
            return
    # every row that names no file is reported, never silently dropped
    reported = {name for name, _ in listing.problems}
    labeled = {e.path for e in listing.entries if e.label is not None}
    assert {f"a/img{i}.png" for i in range(0, 8, 2)} <= labeled
    for name in reported:
        assert not (root / name).is_file()
