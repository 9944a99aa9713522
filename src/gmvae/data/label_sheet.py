"""Label sheets for the built-in data sets: ``index,label`` rows naming training images.

``gmvae suggest`` writes one with the labels left empty; once filled in,
``--data.labeled_indices FILE`` trains with exactly those labeled images. An index is a
row of the data set's official training split (0..59,999 for MNIST), so a sheet does
not depend on the seed; the seed's validation part must not hold any of them. A sheet
of one ``index`` column (no labels) takes the data set's own labels for those rows.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gmvae.errors import DataError

INDEX_HEADER = ("index", "label")


@dataclass(frozen=True)
class IndexSheet:
    """Rows of the official training split and their class numbers (None: the data set's)."""

    path: Path
    indices: np.ndarray
    labels: np.ndarray | None

    def __len__(self) -> int:
        return len(self.indices)


def read_index_sheet(path: str | Path, class_names: Sequence[str]) -> IndexSheet:
    """Parse ``index[,label]`` rows; a label is a class name or a class number."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: labeled indices file not found")
    names = {name: k for k, name in enumerate(class_names)}
    numbers = {str(k): k for k in range(len(class_names))}
    indices: list[int] = []
    labels: list[int | None] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            for number, row in enumerate(csv.reader(f), 1):
                cells = [c.strip() for c in row]
                if not "".join(cells):
                    continue
                if number == 1 and cells[0].lower() == "index":
                    continue
                if len(cells) > 2:
                    raise DataError(f"{path}, line {number}: expected 'index,label', got {row}")
                if not cells[0].isdigit():
                    raise DataError(f"{path}, line {number}: {cells[0]!r} is not a row index")
                indices.append(int(cells[0]))
                text = cells[1] if len(cells) == 2 else ""
                if text and text not in names and text not in numbers:
                    raise DataError(
                        f"{path}, line {number}: label {text!r} is not a class of the data set "
                        f"({', '.join(class_names)}, or their numbers 0-{len(class_names) - 1})"
                    )
                labels.append(names.get(text, numbers.get(text)) if text else None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read the labeled indices: {exc}") from None
    if not indices:
        raise DataError(f"{path}: no 'index,label' rows")
    unique, counts = np.unique(indices, return_counts=True)
    if (counts > 1).any():
        raise DataError(f"{path}: index {int(unique[counts > 1][0])} is listed twice")
    filled = [label is not None for label in labels]
    if any(filled) and not all(filled):
        missing = indices[filled.index(False)]
        raise DataError(
            f"{path}: index {missing} has no label: fill in every label, or leave them all "
            "empty to take the data set's own labels"
        )
    values = np.array(labels, dtype=np.int64) if all(filled) else None
    return IndexSheet(path, np.array(indices, dtype=np.int64), values)


def positions_in(sheet: IndexSheet, rows: np.ndarray, total: int, seed: int) -> np.ndarray:
    """Positions into ``rows`` (sorted official indices of the train part) of the sheet's rows."""
    beyond = sheet.indices[sheet.indices >= total]
    if len(beyond):
        raise DataError(
            f"{sheet.path}: index {int(beyond[0])} is beyond the {total} training images"
        )
    positions = np.searchsorted(rows, sheet.indices)
    found = (positions < len(rows)) & (rows[np.minimum(positions, len(rows) - 1)] == sheet.indices)
    if not found.all():
        raise DataError(
            f"{sheet.path}: index {int(sheet.indices[~found][0])} is in the validation part of "
            f"seed {seed}'s split; choose images of the train part (gmvae suggest --seed {seed})"
        )
    return positions
