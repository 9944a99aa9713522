"""The suggestion rule: one typical image per cluster, uncovered clusters first."""

import numpy as np
import pytest

from gmvae.data.suggest import suggest, typicality
from gmvae.errors import ConfigError

CENTRES = np.array([[10, 0, 0], [0, 10, 0], [0, 0, 10], [-10, 0, 0], [0, -10, 0]], float)
SIZES = (200, 120, 80, 60, 40)  # unequal, as real classes are


def blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Five well-separated Gaussian blobs (features, blob of each row), shuffled."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([c + rng.normal(size=(n, 3)) for c, n in zip(CENTRES, SIZES, strict=True)])
    blob = np.repeat(np.arange(len(SIZES)), SIZES)
    order = rng.permutation(len(x))
    return x[order], blob[order]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_typical_image_per_well_separated_cluster(seed):
    x, blob = blobs(seed)
    picked = suggest(x, 5, seed=seed, normalize=False)
    assert sorted(blob[picked.indices]) == [0, 1, 2, 3, 4]
    closer = []  # per pick: the share of its blob nearer the blob's centre than it is
    for i in picked.indices:
        members = np.flatnonzero(blob == blob[i])
        distance = np.linalg.norm(x[members] - CENTRES[blob[i]], axis=1)
        closer.append((distance < np.linalg.norm(x[i] - CENTRES[blob[i]])).mean())
    # The most typical image lies in the dense middle (a random one: 0.5 on average).
    assert max(closer) < 0.5 and np.mean(closer) < 0.25, closer


def test_a_larger_budget_still_covers_every_cluster_and_the_biggest_first():
    x, blob = blobs()
    picked = suggest(x, 12, normalize=False)
    assert set(blob[picked.indices]) == set(range(5)) and len(set(picked.indices)) == 12
    counts = np.bincount(blob[picked.indices], minlength=5)
    assert counts[0] >= counts[4]  # 200 images get at least as many labels as 40


def test_labeled_rows_cover_their_clusters_and_are_never_suggested():
    x, blob = blobs()
    labeled = np.zeros(len(x), bool)
    labeled[[np.flatnonzero(blob == 0)[0], np.flatnonzero(blob == 1)[0]]] = True
    picked = suggest(x, 3, labeled=labeled, normalize=False)
    assert sorted(blob[picked.indices]) == [2, 3, 4]
    assert not labeled[picked.indices].any()


def test_normalised_features_cluster_directions():
    x, blob = blobs()
    picked = suggest(x * np.random.default_rng(0).uniform(1, 5, (len(x), 1)), 5)
    assert sorted(blob[picked.indices]) == [0, 1, 2, 3, 4]


def test_typicality_is_highest_in_the_dense_middle():
    x = np.concatenate([np.zeros((1, 2)), np.random.default_rng(0).normal(size=(99, 2))])
    assert typicality(x).argmax() == 0 or np.linalg.norm(x[typicality(x).argmax()]) < 0.5


@pytest.mark.parametrize(
    "budget,match", [(0, "positive integer"), (2.5, "positive integer"), (501, "only 500")]
)
def test_impossible_budgets_are_refused(budget, match):
    x, _ = blobs()
    with pytest.raises(ConfigError, match=match):
        suggest(x, budget)


def test_bad_features_are_refused():
    with pytest.raises(ConfigError, match="NaN"):
        suggest(np.full((4, 2), np.nan), 1)
    with pytest.raises(ConfigError, match="labeled"):
        suggest(np.zeros((4, 2)), 1, labeled=np.zeros(3, bool))
