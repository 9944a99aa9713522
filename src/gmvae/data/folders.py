"""A folder of image files as train / val / test arrays, decoded once into a memory-mapped cache.

Layout (docs/DATA.md), relative to the folder:

- ``<class>/...``: images labeled ``<class>`` (any depth below the class folder);
- ``unlabeled/...`` and images directly in the folder: unlabeled, unless the labels
  CSV (``filename,label`` rows, paths relative to the folder; an empty label leaves
  the image unlabeled) names them;
- ``test/``: the test set, laid out the same way (class sub-folders, or images plus
  ``test/labels.csv``); without it, a fixed stratified ``test_fraction`` of the labeled
  images is held out as the test set.

The validation split takes ``val_fraction`` of the remaining labeled images (per class)
and of the unlabeled ones. Both splits use a fixed seed (``SPLIT_SEED``), independent
of the run's seed, so that runs and tuning trials are compared on the same images and
each split is a contiguous block of the cache: a memory-mapped ``.npy`` from which
batches are read on demand, so a folder larger than RAM still trains. The cache is
rebuilt whenever a file is added, removed or modified, or a setting changes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gmvae.config import FolderConfig
from gmvae.data.arrays import ImageArrays
from gmvae.data.images import decode_many, list_files, warn_skipped
from gmvae.data.locate import cache_dir
from gmvae.data.split import holdout_split
from gmvae.errors import DataError
from gmvae.io.atomic import atomic_write_json

UNLABELED_DIR = "unlabeled"
TEST_DIR = "test"
LABELS_CSV = "labels.csv"
SPLIT_SEED = 0
PARTS = ("train", "val", "test")
CACHE_VERSION = 1


@dataclass(frozen=True)
class Entry:
    """One file found in the folder: path relative to the folder, its class name or None."""

    path: str
    label: str | None
    test: bool


@dataclass(frozen=True)
class FolderListing:
    """What a scan of the folder found; no image has been decoded yet."""

    root: Path
    entries: tuple[Entry, ...]
    class_names: tuple[str, ...]
    has_test_dir: bool
    problems: tuple[tuple[str, str], ...]  # (name, reason): CSV rows naming missing files
    fingerprint: str  # changes when any file or label table changes


@dataclass(frozen=True)
class FolderSplits:
    """Train / val / test arrays (labels -1 where unknown) and the file behind each row."""

    train: ImageArrays
    val: ImageArrays
    test: ImageArrays
    class_names: tuple[str, ...]
    files: dict[str, list[str]]
    skipped: list[tuple[str, str]]


def scan_folder(
    root: str | os.PathLike,
    labels_file: str | os.PathLike | None = None,
    *,
    require_labels: bool = True,
) -> FolderListing:
    """List the images of ``root`` with their labels (see the module docstring).

    ``require_labels=False`` accepts a folder without any label (``gmvae suggest``).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: not a folder of images")
    csv_path = Path(labels_file).expanduser() if labels_file else root / LABELS_CSV
    if labels_file and not csv_path.is_file():
        raise DataError(f"{csv_path}: labels file not found")
    csv_lines: dict[str, int] = {}
    table = read_labels_csv(csv_path, csv_lines) if csv_path.is_file() else {}
    # Where each label was first given (for messages): a CSV line or a class folder.
    sources = {label: f"{csv_path}, line {n}" for label, n in csv_lines.items()}
    _check_empty_class_folders(root)

    digest = hashlib.sha256()
    entries: list[Entry] = []
    for path in list_files(root):
        rel = path.relative_to(root).as_posix()
        stat = path.stat()
        digest.update(f"{rel}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
        top = rel.split("/", 1)[0] if "/" in rel else ""
        if top == TEST_DIR:
            continue
        folder_label = None if top in ("", UNLABELED_DIR) else top
        label = table.pop(rel, None)
        if folder_label is not None and label is not None and label != folder_label:
            raise DataError(
                f"{csv_path}: labels {rel} as {label!r} but it is in the class folder {top!r}"
            )
        if folder_label is not None:
            sources.setdefault(folder_label, str(root / folder_label))
        entries.append(Entry(rel, folder_label or label, test=False))
    problems = [(name, f"named in {csv_path.name} but not found") for name in sorted(table)]

    has_test_dir = (root / TEST_DIR).is_dir()
    if has_test_dir:
        _check_empty_class_folders(root / TEST_DIR)
        test_csv = root / TEST_DIR / LABELS_CSV
        test_lines: dict[str, int] = {}
        test_table = read_labels_csv(test_csv, test_lines) if test_csv.is_file() else {}
        for label, n in test_lines.items():
            sources.setdefault(label, f"{test_csv}, line {n}")
        unlabeled = []
        for path in list_files(root / TEST_DIR):
            rel = path.relative_to(root / TEST_DIR).as_posix()
            label = rel.split("/", 1)[0] if "/" in rel else test_table.pop(rel, None)
            if label is None:
                unlabeled.append(rel)
                continue
            sources.setdefault(label, str(root / TEST_DIR / label))
            entries.append(Entry(f"{TEST_DIR}/{rel}", label, test=True))
        if unlabeled:
            raise DataError(
                f"{root / TEST_DIR}: {len(unlabeled)} test image(s) have no label (e.g. "
                f"{unlabeled[0]}): put them in class sub-folders or list them in {test_csv}"
            )
        problems += [(f"{TEST_DIR}/{n}", f"named in {test_csv} but not found") for n in test_table]
        if test_csv.is_file():
            digest.update(test_csv.read_bytes())
    if csv_path.is_file():
        digest.update(csv_path.read_bytes())

    class_names = _sorted_names({e.label for e in entries if e.label is not None})
    if require_labels and not any(e.label is not None and not e.test for e in entries):
        raise DataError(
            f"{root}: no labeled images: put each class in a sub-folder named after it, or "
            f"list 'filename,label' rows in {root / LABELS_CSV} (for clustering without "
            "labels, use gmvae.estimator.GMVAEClassifier with y = -1)"
        )
    if require_labels:  # a classifier is to be trained on these labels
        _check_classes(root, entries)
    _check_label_kinds(entries, sources)
    return FolderListing(
        root, tuple(entries), class_names, has_test_dir, tuple(problems), digest.hexdigest()
    )


def _check_classes(root: Path, entries: list[Entry]) -> None:
    """Refuse what would train a classifier without a word: one class, or a class with no
    labeled training image (only in ``test/``)."""
    trained = sorted({e.label for e in entries if e.label is not None and not e.test})
    if len(trained) < 2:
        raise DataError(
            f"{root}: only one class has labeled images ({trained[0]!r}); a classifier needs "
            "labeled images of at least two classes (a sub-folder per class, or labels.csv rows)"
        )
    only_test = sorted({e.label for e in entries if e.test and e.label not in trained})
    if only_test:
        raise DataError(
            f"{root / TEST_DIR}: class {only_test[0]!r} has test images but no labeled training "
            f"image; add some to {root / only_test[0]}, or remove it from {TEST_DIR}/"
        )


def _check_empty_class_folders(root: Path) -> None:
    """A class folder without image files would silently not be a class: refuse it."""
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if folder.name in (UNLABELED_DIR, TEST_DIR) or list_files(folder):
            continue
        raise DataError(
            f"{folder}: an empty class folder (no image files); add the images of class "
            f"{folder.name!r}, or remove the folder"
        )


def _is_integer(name: str) -> bool:
    return name.lstrip("-").isdigit()


def _check_label_kinds(entries: list[Entry], sources: dict[str, str]) -> None:
    """Integer labels with a word among them (or words with an integer) in a labels CSV are
    a typo far more often than a class: refuse the odd one out, naming its line."""
    names = {e.label for e in entries if e.label is not None}
    numbers = {n for n in names if _is_integer(n)}
    if not numbers or numbers == names:
        return
    words = names - numbers
    odd, kind = (words, "a word") if len(words) <= len(numbers) else (numbers, "an integer")
    typed = sorted(n for n in odd if ", line " in sources.get(n, ""))
    if not typed:
        return  # class folders the user named so: deliberate, not a typo
    others = _sorted_names(names - odd)
    first = typed[0]
    shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
    raise DataError(
        f"{sources.get(first, first)}: label {first!r} is {kind} among labels like {shown}; "
        "fix it, or name every class the same way"
    )


def read_labels_csv(path: Path, lines: dict[str, int] | None = None) -> dict[str, str]:
    """``filename,label`` rows (an optional header row ``filename,label``) -> {filename: label}.

    A row whose label is empty leaves its image unlabeled: a sheet from ``gmvae suggest``
    trains as it is, with the rows a user could not label left blank. ``lines``, when
    given, receives the line of each label's first row (for messages).
    """
    table: dict[str, str] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            for number, row in enumerate(csv.reader(f), 1):
                if not row or not "".join(row).strip():
                    continue
                if len(row) != 2:
                    raise DataError(f"{path}, line {number}: expected 'filename,label', got {row}")
                name, label = (c.strip() for c in row)
                if number == 1 and (name.lower(), label.lower()) == ("filename", "label"):
                    continue
                if not name:
                    raise DataError(f"{path}, line {number}: empty file name")
                if not label:
                    continue
                name = Path(name).as_posix()
                if table.get(name, label) != label:
                    raise DataError(f"{path}, line {number}: {name} labeled twice, differently")
                table[name] = label
                if lines is not None:
                    lines.setdefault(label, number)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read the labels table: {exc}") from None
    return table


def _sorted_names(names: set[str]) -> tuple[str, ...]:
    """Numeric class names in numeric order ('2' before '10'), others alphabetically."""
    if all(n.lstrip("-").isdigit() for n in names):
        return tuple(sorted(names, key=int))
    return tuple(sorted(names))


def plan_splits(
    listing: FolderListing, val_fraction: float, test_fraction: float
) -> dict[str, np.ndarray]:
    """Positions into ``listing.entries`` of each part, with the fixed ``SPLIT_SEED``."""
    index = {name: i for i, name in enumerate(listing.class_names)}
    labels = np.array([index[e.label] if e.label is not None else -1 for e in listing.entries])
    is_test = np.array([e.test for e in listing.entries], dtype=bool)
    if listing.has_test_dir:
        test = np.flatnonzero(is_test)
        rest = np.flatnonzero(~is_test)
    else:
        rest, test = holdout_split(labels, test_fraction, SPLIT_SEED, unlabeled=False)
    keep, val = holdout_split(labels[rest], val_fraction, SPLIT_SEED + 1)
    return {"train": rest[keep], "val": rest[val], "test": test}


def load_folder(
    root: str | os.PathLike,
    config: FolderConfig,
    val_fraction: float,
    *,
    listing: FolderListing | None = None,
) -> FolderSplits:
    """Train / val / test arrays of an image folder; decodes only when the cache is stale.

    Files that cannot be decoded are left out and listed in one :class:`SkippedFilesWarning`.
    """
    listing = listing or scan_folder(root, config.labels_file)
    folder = cache_folder(listing.root, config)
    fingerprint = hashlib.sha256(
        json.dumps(
            [
                CACHE_VERSION,
                listing.fingerprint,
                val_fraction,
                config.test_fraction,
                listing.class_names,
            ]
        ).encode()
    ).hexdigest()
    meta = _read_meta(folder)
    if meta is None or meta.get("fingerprint") != fingerprint:
        meta = _build_cache(folder, listing, config, val_fraction, fingerprint)
    skipped = [tuple(s) for s in meta["skipped"]]
    warn_skipped(str(listing.root), skipped)
    splits = _open_cache(folder, meta, listing)
    counts = np.bincount(
        splits.train.labels.numpy()[splits.train.labels.numpy() >= 0],
        minlength=len(listing.class_names),
    )
    unread = [name for name, n in zip(listing.class_names, counts, strict=True) if n == 0]
    if unread:
        raise DataError(
            f"{listing.root}: class {unread[0]!r} has no readable labeled training image (its "
            "files were skipped, see the warning above); add readable images of it"
        )
    return splits


def cache_folder(root: Path, config: FolderConfig) -> Path:
    """One cache folder per (image folder, size, channels); rebuilt in place when stale."""
    base = Path(config.cache_dir).expanduser() if config.cache_dir else cache_dir() / "folders"
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return base / f"{root.resolve().name}-{key}-{config.image_size}px-{config.channels}ch"


def _read_meta(folder: Path) -> dict | None:
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _build_cache(
    folder: Path,
    listing: FolderListing,
    config: FolderConfig,
    val_fraction: float,
    fingerprint: str,
) -> dict:
    """Decode every image into its part's block of ``images.npy``; write ``meta.json`` last."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").unlink(missing_ok=True)  # a crash mid-build leaves no valid cache
    plan = plan_splits(listing, val_fraction, config.test_fraction)
    order = np.concatenate([plan[p] for p in PARTS])
    if not len(order):
        raise DataError(f"{listing.root}: no image files found")
    size, channels = config.image_size, config.channels
    index = {name: i for i, name in enumerate(listing.class_names)}
    paths = [listing.root / listing.entries[i].path for i in order]
    fd, tmp_images = tempfile.mkstemp(prefix=".images.", suffix=".npy", dir=folder)
    os.close(fd)
    images = np.lib.format.open_memmap(
        tmp_images, mode="w+", dtype=np.uint8, shape=(len(order), channels, size, size)
    )
    labels = np.full(len(order), -1, dtype=np.int64)
    starts = np.cumsum([0] + [len(plan[p]) for p in PARTS])
    counts = dict.fromkeys(PARTS, 0)
    files: dict[str, list[str]] = {p: [] for p in PARTS}
    skipped = list(listing.problems)
    try:
        for position, array, reason in decode_many(paths, size, channels):
            entry = listing.entries[order[position]]
            if array is None:
                skipped.append((entry.path, reason))
                continue
            part_no = int(np.searchsorted(starts, position, side="right")) - 1
            part = PARTS[part_no]
            row = starts[part_no] + counts[part]
            images[row] = array
            labels[row] = index[entry.label] if entry.label is not None else -1
            files[part].append(entry.path)
            counts[part] += 1
        images.flush()
        del images
        os.replace(tmp_images, folder / "images.npy")
    finally:
        Path(tmp_images).unlink(missing_ok=True)
    fd, tmp_labels = tempfile.mkstemp(prefix=".labels.", suffix=".npy", dir=folder)
    with os.fdopen(fd, "wb") as f:
        np.save(f, labels)
    os.replace(tmp_labels, folder / "labels.npy")
    meta = {
        "version": CACHE_VERSION,
        "fingerprint": fingerprint,
        "root": str(listing.root.resolve()),
        "image_size": size,
        "channels": channels,
        "class_names": list(listing.class_names),
        "parts": {p: [int(starts[i]), counts[p]] for i, p in enumerate(PARTS)},
        "files": files,
        "skipped": [list(s) for s in skipped],
    }
    atomic_write_json(folder / "meta.json", meta)
    return meta


def _open_cache(folder: Path, meta: dict, listing: FolderListing) -> FolderSplits:
    # Copy-on-write mapping: pages are read on demand and torch gets a writable view.
    images = np.load(folder / "images.npy", mmap_mode="c")
    labels = np.load(folder / "labels.npy")
    sets = {}
    for part in PARTS:
        start, count = meta["parts"][part]
        sets[part] = ImageArrays(
            torch.from_numpy(images[start : start + count]),
            torch.from_numpy(labels[start : start + count]),
            f"{listing.root} ({part})",
        )
    return FolderSplits(
        sets["train"],
        sets["val"],
        sets["test"],
        tuple(meta["class_names"]),
        meta["files"],
        [tuple(s) for s in meta["skipped"]],
    )
