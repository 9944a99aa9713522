"""Clustering scores: accuracy under the best one-to-one cluster -> class matching, and NMI.

A cluster index carries no meaning of its own, so a clustering is scored after
relabelling its clusters with the matching that agrees most with the true classes
(the Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``), as in the
clustering literature the paper compares with (Table 3).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import confusion_matrix, normalized_mutual_info_score


def _check(labels: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, clusters = np.asarray(labels), np.asarray(clusters)
    if labels.ndim != 1 or labels.shape != clusters.shape:
        raise ValueError(
            f"labels and clusters must be 1-D of one length, got {labels.shape} and {clusters.shape}"
        )
    if len(labels) == 0:
        raise ValueError("cannot score an empty clustering")
    return labels, clusters


def best_cluster_mapping(labels: np.ndarray, clusters: np.ndarray) -> dict[int, int]:
    """{cluster: class}, one-to-one, maximising the number of points whose class it names.

    With more clusters than classes the surplus clusters map to no class (they are
    absent from the dict) and count as errors.
    """
    labels, clusters = _check(labels, clusters)
    classes, cluster_ids = np.unique(labels), np.unique(clusters)
    ids = np.union1d(classes, cluster_ids)  # a square table: rows clusters, columns classes
    counts = confusion_matrix(clusters, labels, labels=ids)  # counts[i, j]: cluster i, class j
    rows, cols = linear_sum_assignment(counts, maximize=True)
    in_data = set(cluster_ids.tolist())
    valid = set(classes.tolist())
    return {
        int(ids[r]): int(ids[c])
        for r, c in zip(rows, cols, strict=True)
        if ids[r] in in_data and ids[c] in valid
    }


def cluster_accuracy(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Fraction of points whose cluster maps to their class under :func:`best_cluster_mapping`.

    >>> cluster_accuracy(np.array([0, 0, 1, 1, 2]), np.array([7, 7, 3, 3, 5]))
    1.0
    """
    labels, clusters = _check(labels, clusters)
    mapping = best_cluster_mapping(labels, clusters)
    mapped = np.array([mapping.get(int(c), -1) for c in clusters])
    return float((mapped == labels).mean())


def normalized_mutual_info(labels: np.ndarray, clusters: np.ndarray) -> float:
    """NMI with the arithmetic-mean normaliser (scikit-learn's default); invariant to relabelling.

    >>> normalized_mutual_info(np.array([0, 0, 1, 1]), np.array([1, 1, 0, 0]))
    1.0
    """
    labels, clusters = _check(labels, clusters)
    return float(normalized_mutual_info_score(labels, clusters))
