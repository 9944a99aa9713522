"""Decode image files (any format Pillow reads) into fixed-size uint8 arrays.

One rule for training and prediction alike, so that a model sees the same pixels:
EXIF orientation applied, transparent pixels composited onto black (the MNIST
convention: background is 0), converted to grey (``L``) or RGB, then resized to a
square ``size x size`` with Lanczos filtering (the aspect ratio is not kept).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Files that are never images and never worth a warning: label tables written by users.
NOT_IMAGES = (".csv",)
_CHUNK = 256


class SkippedFilesWarning(UserWarning):
    """Some files could not be read as images and were left out."""


def decode_image(path: str | os.PathLike, size: int, channels: int) -> np.ndarray:
    """The image at ``path`` as (channels, size, size) uint8; raises ``ValueError`` if unreadable."""
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                rgba = img.convert("RGBA")
                black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
                img = Image.alpha_composite(black, rgba)
            img = img.convert("L" if channels == 1 else "RGB")
            img = img.resize((size, size), Image.Resampling.LANCZOS)
            array = np.asarray(img, dtype=np.uint8)
    except Exception as exc:
        # Pillow's decoders meet damaged files with many types besides OSError (TypeError,
        # SyntaxError, struct.error, IndexError, ... as found by tests/data/test_folder_fuzz.py):
        # any of them means the file is not a readable image, to skip and report.
        raise ValueError(_reason(exc)) from None
    if channels == 1:
        return array[None]  # (1, S, S)
    return np.ascontiguousarray(array.transpose(2, 0, 1))  # (H, W, 3) -> (3, S, S)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnidentifiedImageError):
        return "not an image Pillow can read"
    return f"{type(exc).__name__}: {exc}"


def decode_many(
    paths: Sequence[str | os.PathLike], size: int, channels: int
) -> Iterator[tuple[int, np.ndarray | None, str]]:
    """(position, array or None, reason) for every path, in order; decodes on threads.

    Pillow releases the GIL while decoding, so threads use several cores without
    copying arrays between processes. Chunks keep memory bounded for huge folders.
    """
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(paths), _CHUNK):
            chunk = paths[start : start + _CHUNK]
            for offset, result in enumerate(
                pool.map(_try_decode, chunk, [size] * len(chunk), [channels] * len(chunk))
            ):
                array, reason = result
                yield start + offset, array, reason


def _try_decode(path: str | os.PathLike, size: int, channels: int) -> tuple[np.ndarray | None, str]:
    try:
        return decode_image(path, size, channels), ""
    except ValueError as exc:
        return None, str(exc)


def warn_skipped(where: str, skipped: Sequence[tuple[str, str]], *, limit: int = 20) -> None:
    """One warning listing the files left out (the first ``limit``, then a count)."""
    if not skipped:
        return
    lines = [f"  {name}: {reason}" for name, reason in skipped[:limit]]
    if len(skipped) > limit:
        lines.append(f"  ... and {len(skipped) - limit} more")
    warnings.warn(
        f"{where}: skipped {len(skipped)} file(s) that are not readable images:\n"
        + "\n".join(lines),
        SkippedFilesWarning,
        stacklevel=3,
    )


def list_files(root: Path) -> list[Path]:
    """Every non-hidden file under ``root``, sorted; label tables (``.csv``) left out."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and not name.lower().endswith(NOT_IMAGES):
                found.append(Path(dirpath) / name)
    return found
