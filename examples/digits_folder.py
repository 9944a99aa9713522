"""Write scikit-learn's 1,797 digits as a folder of PNG files laid out for gmvae (docs/DATA.md).

    python examples/digits_folder.py my-images [--labels-per-class 10]

my-images/<digit>/   a few labeled images per class
my-images/unlabeled/ the other training images, labels hidden
my-images/test/<digit>/ a stratified third, labeled, used only to test
Each image is the 8x8 digit enlarged to 32x32 grey, as a photo of a digit would be.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--labels-per-class", type=int, default=10)
    args = parser.parse_args()
    if args.folder.exists() and any(args.folder.iterdir()):
        print(f"{args.folder} exists and is not empty; choose a new folder", file=sys.stderr)
        return 2
    digits = load_digits()
    pixels = (digits.images / 16.0 * 255).round().astype(np.uint8)
    train, test = train_test_split(
        np.arange(len(pixels)), test_size=1 / 3, stratify=digits.target, random_state=0
    )
    rng = np.random.default_rng(0)
    labeled = {
        int(i)
        for c in range(10)
        for i in rng.choice(train[digits.target[train] == c], args.labels_per_class, replace=False)
    }
    held_out = set(test.tolist())
    for i, (image, digit) in enumerate(zip(pixels, digits.target, strict=True)):
        sub = f"test/{digit}" if i in held_out else str(digit) if i in labeled else "unlabeled"
        path = args.folder / sub / f"digit{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).resize((32, 32), Image.Resampling.BICUBIC).save(path)
    print(
        f"wrote {len(pixels)} PNG files to {args.folder}: {len(labeled)} labeled, "
        f"{len(train) - len(labeled)} unlabeled, {len(test)} in test/"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
