"""``gmvae suggest DATA --budget N --out DIR``: which N images to label, as a sheet to fill in.

DATA is a folder of images, laid out as for ``gmvae fit`` (its labeled images count as
covered; ``test/`` is left out), or a built-in data set (mnist, fashion-mnist, svhn,
digits: the train part of ``--seed``'s split, the images ``gmvae fit`` trains on). The
rule of :mod:`gmvae.data.suggest` picks the images on the features of ``--model``; without
one, a clustering model is trained on DATA's images first and saved in DIR. DIR gets:

- ``labels.csv``: ``filename,label`` rows (``index,label`` for a built-in data set) in
  the order of the sheet, labels empty: fill them in, then train with
  ``--data.folder.labels_file DIR/labels.csv`` (``--data.labeled_indices`` for a
  built-in data set);
- ``contact-sheet.png``: the images, numbered as the rows of ``labels.csv``;
- ``suggestions.csv``: number, image, k-means cluster and typicality of every pick;
- ``model.safetensors`` + ``model.json``: the clustering model, when one was trained.
"""

from __future__ import annotations

import argparse
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gmvae.data.folders import LABELS_CSV, read_labels_csv, scan_folder
from gmvae.data.images import decode_many, warn_skipped
from gmvae.data.label_sheet import INDEX_HEADER, positions_in, read_index_sheet
from gmvae.data.registry import DATASETS, get_spec, load_split
from gmvae.data.split import train_val_split
from gmvae.data.suggest import Suggestion, suggest
from gmvae.errors import ConfigError, DataError, ToolParser
from gmvae.io.atomic import atomic_write_bytes
from gmvae.io.contact_sheet import numbered_sheet
from gmvae.io.model_file import ModelCard, load_model, save_model
from gmvae.model.gmvae import GMVAE
from gmvae.training.clustering_model import train_clustering_model
from gmvae.training.epoch_targets import dataset_features

OUTPUTS = ("labels.csv", "contact-sheet.png", "suggestions.csv")
MODEL_FILES = ("model.safetensors", "model.json")


@dataclass
class Pool:
    """The images to choose from: a key per row (file name or official index), labeled rows."""

    keys: list[str]
    images: torch.Tensor  # (N, C, H, W) uint8
    labeled: np.ndarray
    key_name: str  # the first column of labels.csv
    carried: list[tuple[str, str]] = field(default_factory=list)  # labels kept in the sheet


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    _check_args(args)
    folder = Path(args.data).expanduser()
    is_folder = folder.is_dir()
    if not is_folder and args.data not in DATASETS:
        raise ConfigError(
            f"{args.data}: neither a folder of images nor a data set ({', '.join(DATASETS)})"
        )
    if is_folder and args.labeled:
        raise ConfigError(
            "--labeled is for the built-in data sets; a folder's labels are its class "
            "folders and labels.csv"
        )
    out = Path(args.out).expanduser()
    _check_outputs(out, folder if is_folder else None, trains=args.model is None, force=args.force)

    model, image_shape = None, None
    if args.model is not None:
        model, card = load_model(args.model)
        image_shape = tuple(card.image_shape)
    pool = _folder_pool(folder, args, image_shape) if is_folder else _dataset_pool(args)
    if model is not None and tuple(pool.images.shape[1:]) != image_shape:
        raise DataError(
            f"{args.data}: images of shape {tuple(pool.images.shape[1:])}, but the model "
            f"{args.model} expects {image_shape}"
        )
    unlabeled = int((~pool.labeled).sum())
    if args.budget > unlabeled:
        raise ConfigError(
            f"--budget {args.budget}: {args.data} has only {unlabeled} unlabeled images"
        )

    if model is None:
        model = _train_clustering(pool, args, out)
    picked = suggest(
        _features(model, pool.images), args.budget, labeled=pool.labeled, seed=args.seed
    )
    _write(out, pool, picked)
    print(
        f"wrote {out / OUTPUTS[0]}: {args.budget} images to label, numbered as in "
        f"{out / OUTPUTS[1]} ({picked.n_clusters} clusters, {int(pool.labeled.sum())} "
        f"images already labeled)"
    )
    if is_folder:
        print(
            f"then: gmvae fit --config configs/folder.yaml --data.data_dir {args.data} "
            f"--data.folder.labels_file {out / OUTPUTS[0]}"
        )
    else:
        print(
            f"then: gmvae fit --config CONFIG --data.labeled_indices {out / OUTPUTS[0]} "
            f"--seed_everything {args.seed}"
        )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = ToolParser(prog="gmvae suggest", description=__doc__.split("\n")[0])
    parser.add_argument("data", help="a folder of images, or mnist, fashion-mnist, svhn, digits")
    parser.add_argument("--budget", type=int, required=True, help="number of images to label")
    parser.add_argument("--out", required=True, help="folder to write the sheet into")
    parser.add_argument(
        "--model",
        help="model.safetensors to take the features from "
        "(default: train a clustering model on DATA first)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="k-means seed; for a built-in data "
        "set also the split's, so use the seed you train with",
    )
    parser.add_argument("--force", action="store_true", help="replace existing output files")
    data = parser.add_argument_group("built-in data sets")
    data.add_argument("--data-dir", help="folder holding <dataset>/ (as --data.data_dir)")
    data.add_argument("--no-download", action="store_true", help="never fetch missing files")
    data.add_argument("--val-fraction", type=float, default=0.2, help="as --data.val_fraction")
    data.add_argument("--labeled", help="index,label sheet of the images already labeled")
    folder = parser.add_argument_group("image folders (without --model)")
    folder.add_argument("--image-size", type=int, default=28, help="as --data.folder.image_size")
    folder.add_argument("--channels", type=int, default=1, choices=(1, 3))
    train = parser.add_argument_group("the clustering model (without --model)")
    train.add_argument("--clusters", type=int, default=10, help="categories of y")
    train.add_argument("--epochs", type=int, default=20, help="training epochs")
    return parser


def _check_args(args: argparse.Namespace) -> None:
    for option, value, least in (
        ("--budget", args.budget, 1),
        ("--image-size", args.image_size, 1),
        ("--clusters", args.clusters, 2),
        ("--epochs", args.epochs, 1),
    ):
        if value < least:
            raise ConfigError(f"{option} {value} must be >= {least}")
    if not 0 < args.val_fraction < 1:
        raise ConfigError(f"--val-fraction {args.val_fraction} must lie strictly between 0 and 1")
    if args.model is not None and not Path(args.model).is_file():
        raise DataError(f"--model {args.model}: no such file")


def _check_outputs(out: Path, folder: Path | None, *, trains: bool, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    if folder is not None and out.resolve().is_relative_to(folder.resolve()):
        raise ConfigError(
            f"--out {out} lies inside {folder}: its contact sheet would be read as an image; "
            "choose a folder outside it"
        )
    names = OUTPUTS + (MODEL_FILES if trains else ())
    if not force:
        for name in names:
            if (out / name).exists():
                raise ConfigError(f"{out / name} exists; pass --force to replace it")


def _folder_pool(folder: Path, args: argparse.Namespace, shape: tuple | None) -> Pool:
    """Every image of the folder but ``test/``, decoded at the model's size."""
    channels, size = (args.channels, args.image_size) if shape is None else shape[:2]
    if shape is not None and shape[1] != shape[2]:
        raise DataError(f"the model takes {shape[1]}x{shape[2]} images; only square ones decode")
    listing = scan_folder(folder, require_labels=False)
    entries = [e for e in listing.entries if not e.test]
    if not entries:
        raise DataError(f"{folder}: no image files found")
    keys, arrays, labeled, skipped = [], [], [], list(listing.problems)
    paths = [folder / e.path for e in entries]
    for position, array, reason in decode_many(paths, size, channels):
        if array is None:
            skipped.append((entries[position].path, reason))
            continue
        keys.append(entries[position].path)
        arrays.append(array)
        labeled.append(entries[position].label is not None)
    warn_skipped(str(folder), skipped)
    if not arrays:
        raise DataError(f"{folder}: none of its {len(entries)} files is a readable image")
    table = folder / LABELS_CSV
    carried = list(read_labels_csv(table).items()) if table.is_file() else []
    images = torch.from_numpy(np.stack(arrays))
    return Pool(keys, images, np.array(labeled, bool), "filename", carried)


def _dataset_pool(args: argparse.Namespace) -> Pool:
    """The train part of the seed's split, as ``gmvae fit`` draws it."""
    spec = get_spec(args.data)
    arrays = load_split(args.data, "train", data_dir=args.data_dir, download=not args.no_download)
    rows, _ = train_val_split(arrays.labels.numpy(), args.val_fraction, args.seed)
    labeled = np.zeros(len(rows), bool)
    if args.labeled:
        sheet = read_index_sheet(args.labeled, spec.class_names)
        labeled[positions_in(sheet, rows, len(arrays), args.seed)] = True
    return Pool([str(i) for i in rows], arrays.images[torch.from_numpy(rows)], labeled, "index")


def _train_clustering(pool: Pool, args: argparse.Namespace, out: Path) -> GMVAE:
    """A GMVAE with ``--clusters`` categories trained on every image of the pool, saved in ``out``."""
    print(f"training a clustering model on {len(pool.images)} images ({args.epochs} epochs)...")
    model = train_clustering_model(pool.images, args.clusters, args.epochs, seed=args.seed)
    names = tuple(str(k) for k in range(args.clusters))
    card = ModelCard(
        tuple(pool.images.shape[1:]), args.clusters, model.config, names, {"num_labeled": 0}
    )
    save_model(out / MODEL_FILES[0], model, card)
    return model


def _features(model: GMVAE, images: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
    """x_hat of every image, the encoder's deterministic features."""
    device = next(model.parameters()).device
    return dataset_features(model, images, device=device, batch_size=batch_size).cpu().numpy()


def _write(out: Path, pool: Pool, picked: Suggestion) -> None:
    keys = [pool.keys[i] for i in picked.indices]
    sheet = io.StringIO()
    writer = csv.writer(sheet, lineterminator="\n")
    writer.writerow([pool.key_name, INDEX_HEADER[1]])
    writer.writerows([key, ""] for key in keys)
    chosen = set(keys)
    writer.writerows(row for row in pool.carried if row[0] not in chosen)
    details = io.StringIO()
    writer = csv.writer(details, lineterminator="\n")
    writer.writerow(["number", pool.key_name, "cluster", "typicality"])
    for number, (key, c, t) in enumerate(
        zip(keys, picked.clusters, picked.typicality, strict=True), 1
    ):
        writer.writerow([number, key, int(c), f"{t:.6g}"])
    images = pool.images[torch.from_numpy(picked.indices)].float().div(255).numpy()
    fig = numbered_sheet(
        images, title=f"label these {len(keys)} images in labels.csv: its k-th row is image k"
    )
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    atomic_write_bytes(out / OUTPUTS[0], sheet.getvalue().encode())
    atomic_write_bytes(out / OUTPUTS[2], details.getvalue().encode())
    atomic_write_bytes(out / OUTPUTS[1], png.getvalue())
