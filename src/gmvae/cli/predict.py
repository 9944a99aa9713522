"""``gmvae predict MODEL INPUTS... --out preds.csv``: class and class probabilities per image.

INPUTS are image files, folders (searched recursively; ``.csv`` and hidden files
ignored) or one ``.npy`` array of images. Images are decoded exactly as for training
from a folder (gmvae.data.images). Files that are not readable images are skipped and
listed in one warning. The CSV has one row per image: ``file`` (or ``row``, the index
into the ``.npy``), ``predicted`` (the class name), then ``prob_<class>`` for every class.
"""

from __future__ import annotations

import argparse
import csv
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from gmvae.data.arrays import to_float
from gmvae.data.images import decode_many, list_files, warn_skipped
from gmvae.data.layout import to_images
from gmvae.errors import ConfigError, DataError
from gmvae.io.atomic import atomic_write_bytes
from gmvae.io.model_file import load_model
from gmvae.model.gmvae import GMVAE


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gmvae predict", description=__doc__.split("\n")[0])
    parser.add_argument("model", help="model file (.safetensors, with its .json beside it)")
    parser.add_argument("inputs", nargs="+", help="image files, folders, or one .npy file")
    parser.add_argument("--out", required=True, help="CSV file to write")
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size {args.batch_size} must be >= 1")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise ConfigError(f"{out} exists; pass --force to overwrite it")
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    model, card = load_model(args.model, map_location=str(device))
    names = card.class_names or tuple(str(c) for c in range(card.num_classes))

    npys = [p for p in args.inputs if p.lower().endswith(".npy")]
    if npys and len(args.inputs) > 1:
        raise ConfigError("give one .npy file, or image files and folders, not both")
    batches = _npy_batches(Path(npys[0]), card.image_shape, args.batch_size) if npys else None
    if batches is None:
        batches = _image_batches(args.inputs, card.image_shape, args.batch_size)

    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["row" if npys else "file", "predicted", *(f"prob_{n}" for n in names)])
    count = 0
    for keys, images in batches:
        probs = _probabilities(model, images, device)
        for key, p in zip(keys, probs, strict=True):
            writer.writerow([key, names[int(p.argmax())], *(f"{v:.6g}" for v in p)])
        count += len(keys)
    atomic_write_bytes(out, text.getvalue().encode())
    print(f"wrote {count} predictions to {out}")
    return 0


@torch.inference_mode()
def _probabilities(model: GMVAE, images: torch.Tensor, device: torch.device) -> np.ndarray:
    return torch.softmax(model.classify(to_float(images).to(device)), dim=-1).cpu().numpy()


def _npy_batches(
    path: Path, image_shape: tuple[int, int, int], batch_size: int
) -> Iterator[tuple[list[int], torch.Tensor]]:
    """Row indices and images of an ``.npy`` (memory-mapped; never unpickled)."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npy array: {exc}") from None
    to_images(array[:1], image_shape, source=str(path))  # fail before any output
    for start in range(0, len(array), batch_size):
        chunk = array[start : start + batch_size]
        yield (
            list(range(start, start + len(chunk))),
            to_images(chunk, image_shape, source=str(path)),
        )


def _image_batches(
    inputs: list[str], image_shape: tuple[int, int, int], batch_size: int
) -> Iterator[tuple[list[str], torch.Tensor]]:
    """File names and decoded images, ``batch_size`` at a time; unreadable files skipped."""
    paths: list[Path] = []
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            paths += list_files(path)
        elif path.is_file():
            paths.append(path)
        else:
            raise DataError(f"{path}: no such file or folder")
    if not paths:
        raise DataError(f"no files found in {', '.join(inputs)}")
    channels, size, width = image_shape
    if size != width:
        raise DataError(f"the model takes {size}x{width} images; only square images are decoded")
    skipped: list[tuple[str, str]] = []
    keys: list[str] = []
    arrays: list[np.ndarray] = []
    for position, array, reason in decode_many(paths, size, channels):
        if array is None:
            skipped.append((str(paths[position]), reason))
            continue
        keys.append(str(paths[position]))
        arrays.append(array)
        if len(arrays) == batch_size:
            yield keys, torch.from_numpy(np.stack(arrays))
            keys, arrays = [], []
    if arrays:
        yield keys, torch.from_numpy(np.stack(arrays))
    warn_skipped("gmvae predict", skipped)
