"""The seeded 80/20 stratified train/val split and the balanced labeled subset (paper 5.1)."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from gmvae.errors import ConfigError


def train_val_split(
    labels: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val), stratified by class, fixed by ``seed``; each sorted."""
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction={val_fraction!r} must lie strictly between 0 and 1")
    train, val = train_test_split(
        np.arange(len(labels)), test_size=val_fraction, stratify=labels, random_state=seed
    )
    return np.sort(train), np.sort(val)


def balanced_labeled_subset(
    labels: np.ndarray, num_labeled: int, num_classes: int, seed: int
) -> np.ndarray:
    """Positions into ``labels`` of ``num_labeled // num_classes`` examples per class, sorted."""
    if num_labeled < 0 or num_labeled % num_classes:
        raise ConfigError(
            f"num_labeled={num_labeled} must be a non-negative multiple of the "
            f"{num_classes} classes (the same count per class)"
        )
    per_class = num_labeled // num_classes
    rng = np.random.default_rng([seed, 1])  # a stream of its own, independent of the split's
    chosen = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ConfigError(
                f"num_labeled={num_labeled} asks for {per_class} labeled examples of class {c}, "
                f"but the train part holds only {len(members)}"
            )
        chosen.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)


def random_labeled_subset(num_rows: int, num_labeled: int, seed: int) -> np.ndarray:
    """Positions of ``num_labeled`` rows drawn uniformly, blind to the classes, sorted.

    What a user gets who labels the images that come first: some classes may get none.
    """
    if not 0 <= num_labeled <= num_rows:
        raise ConfigError(
            f"num_labeled={num_labeled} must lie between 0 and the {num_rows} training rows"
        )
    rng = np.random.default_rng([seed, 3])  # not the balanced draw's stream
    return np.sort(rng.choice(num_rows, size=num_labeled, replace=False))


def holdout_split(
    labels: np.ndarray,
    fraction: float,
    seed: int,
    *,
    unlabeled: bool = True,
    min_per_class: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held) for data where -1 marks unlabeled rows; each sorted.

    Per class, ``round(fraction * n)`` rows are held out, at least one and never all of
    them; a class with fewer than ``min_per_class`` labeled rows keeps them all for
    training. Unlabeled rows are held out at the same rate when ``unlabeled``, else
    all kept. Unlike ``train_test_split(stratify=...)`` this works with a handful of
    labels per class, the usual case for user data.
    """
    if not 0 <= fraction < 1:
        raise ConfigError(f"fraction={fraction!r} must lie in [0, 1)")
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, 2])
    held = []
    groups = np.unique(labels) if unlabeled else np.unique(labels[labels >= 0])
    for value in groups:
        members = np.flatnonzero(labels == value)
        n = len(members)
        smallest = 2 if value < 0 else max(2, min_per_class)
        count = 0 if fraction == 0 or n < smallest else min(n - 1, max(1, round(fraction * n)))
        held.append(rng.choice(members, size=count, replace=False))
    held_idx = np.sort(np.concatenate(held)).astype(np.int64) if held else np.empty(0, np.int64)
    kept = np.setdiff1d(np.arange(len(labels)), held_idx)
    return kept, held_idx
