"""Writes folders of real image files (PNG, JPEG, RGBA, odd sizes, bad files) for the tests."""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

BAD_FILES = ("unlabeled/broken.png", "notes.txt")


@cache
def _digits():
    return load_digits()


def digit_image(index: int, size: int) -> Image.Image:
    """The sklearn digit ``index`` as a grey ``size x size`` image."""
    pixels = (_digits().images[index] / 16.0 * 255).round().astype(np.uint8)
    return Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR)


def write_digit_folder(
    root: Path, *, n: int = 300, n_labeled: int = 50, layout: str = "classes"
) -> dict[str, int]:
    """The first ``n`` digits as image files; returns {relative path: true digit}.

    ``layout="classes"``: labeled digits in ``<digit>/``, the others in ``unlabeled/``.
    ``layout="csv"``: every image directly in ``root``, ``labels.csv`` for the labeled.
    Sizes alternate 16x16 / 28x28; every third unlabeled image is an RGB JPEG, one is
    an RGBA PNG; ``unlabeled/broken.png`` is corrupt and ``notes.txt`` is not an image.
    """
    digits = _digits()
    truth: dict[str, int] = {}
    labels: list[tuple[str, str]] = []
    for i in range(n):
        y = int(digits.target[i])
        img = digit_image(i, 16 if i % 2 else 28)
        labeled = i < n_labeled
        suffix = ".png"
        if not labeled and i % 3 == 0:
            img, suffix = img.convert("RGB"), ".jpg"
        elif i == n_labeled + 1:
            img = img.convert("RGBA")
        if layout == "classes":
            rel = f"{y}/img{i:04d}{suffix}" if labeled else f"unlabeled/img{i:04d}{suffix}"
        else:
            rel = f"img{i:04d}{suffix}"
            if labeled:
                labels.append((rel, str(y)))
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path)
        truth[rel] = y
    (root / "unlabeled").mkdir(parents=True, exist_ok=True)
    (root / BAD_FILES[0]).write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png")
    (root / BAD_FILES[1]).write_text("photos from the lab, 2024\n")
    if layout == "csv":
        with open(root / "labels.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["filename", "label"])
            writer.writerows(labels)
    return truth
