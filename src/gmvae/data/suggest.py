"""Which images to label: typical images of the feature clusters not yet covered by a label.

The rule is TypiClust's (Hacohen, Dekel and Weinshall, *Active Learning on a Budget*,
ICML 2022), on the GMVAE's features x_hat. With a budget of a few labels per class,
the labels that help most are the *typical* ones, which represent many images, not the
uncertain ones near a boundary, which help once labels are plentiful:

1. k-means with ``labeled + budget`` clusters on the features, so that the budget can
   give each cluster without a label one;
2. the next pick goes to the cluster with the fewest labeled (or already picked)
   images, the largest one among equals: first the uncovered clusters, biggest first;
3. in it, the image of highest typicality, the inverse of its mean distance to its
   ``k`` nearest neighbours in the cluster (a density estimate).

Features are L2-normalised before clustering (x_hat's scale varies from image to
image; its direction is what the k-NN losses compare).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.neighbors import NearestNeighbors

from gmvae.errors import ConfigError

TYPICALITY_NEIGHBOURS = 20  # TypiClust's k
KMEANS_EXACT_UP_TO = 50  # clusters; more run MiniBatchKMeans, as TypiClust does


@dataclass(frozen=True)
class Suggestion:
    """Rows to label, in the order picked, with the cluster and typicality of each."""

    indices: np.ndarray
    clusters: np.ndarray
    typicality: np.ndarray
    n_clusters: int


def typicality(features: np.ndarray, k: int = TYPICALITY_NEIGHBOURS) -> np.ndarray:
    """1 / mean distance to the ``k`` nearest other rows (all rows: a singleton gets inf)."""
    n = len(features)
    if n < 2:
        return np.full(n, np.inf)
    k = min(k, n - 1)
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features)
    mean = distances[:, 1:].mean(axis=1)  # column 0 is the row itself
    with np.errstate(divide="ignore"):
        return 1.0 / mean


def cluster(features: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    """k-means labels; exact k-means for few clusters, mini-batch for many (as TypiClust)."""
    if n_clusters <= KMEANS_EXACT_UP_TO:
        model = KMeans(n_clusters, n_init=10, random_state=seed)
    else:
        model = MiniBatchKMeans(n_clusters, n_init=3, batch_size=4096, random_state=seed)
    return model.fit_predict(features)


def suggest(
    features: np.ndarray,
    budget: int,
    *,
    labeled: np.ndarray | None = None,
    seed: int = 0,
    k: int = TYPICALITY_NEIGHBOURS,
    normalize: bool = True,
) -> Suggestion:
    """Pick ``budget`` rows of ``features`` (N, D) to label; ``labeled`` marks rows that are.

    Labeled rows are never picked; they cover their clusters. ``normalize``: cluster
    the directions of the features (False: the raw features).
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or not len(features):
        raise ConfigError(f"features must be a non-empty (N, D) array, got {features.shape}")
    if not np.isfinite(features).all():
        raise ConfigError("features contain NaN or Inf values")
    n = len(features)
    is_labeled = np.zeros(n, bool) if labeled is None else np.asarray(labeled, bool)
    if is_labeled.shape != (n,):
        raise ConfigError(f"labeled: expected shape ({n},), got {is_labeled.shape}")
    available = int((~is_labeled).sum())
    if not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ConfigError(f"budget={budget!r} must be a positive integer")
    if budget > available:
        raise ConfigError(f"budget={budget} but only {available} unlabeled images to choose from")

    unit = features
    if normalize:
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        unit = features / np.where(norms > 0, norms, 1.0)
    n_clusters = min(int(is_labeled.sum()) + int(budget), n)
    assignment = cluster(unit, n_clusters, seed)

    score = np.empty(n)
    for c in range(n_clusters):
        members = np.flatnonzero(assignment == c)
        score[members] = typicality(unit[members], k)
    sizes = np.bincount(assignment, minlength=n_clusters)
    covered = np.bincount(assignment[is_labeled], minlength=n_clusters)
    # Within each cluster, candidates from most to least typical.
    queues: dict[int, list[int]] = {}
    for c in range(n_clusters):
        members = np.flatnonzero((assignment == c) & ~is_labeled)
        queues[c] = members[np.argsort(-score[members], kind="stable")].tolist()

    picks: list[int] = []
    while len(picks) < budget:
        open_clusters = [c for c in range(n_clusters) if queues[c]]
        best = min(open_clusters, key=lambda c: (covered[c], -sizes[c], c))
        picks.append(queues[best].pop(0))
        covered[best] += 1
    chosen = np.array(picks, dtype=np.int64)
    return Suggestion(chosen, assignment[chosen], score[chosen], n_clusters)
