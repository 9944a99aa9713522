"""Clustering accuracy and NMI on hand-made clusterings with known answers."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gmvae.training.clustering import best_cluster_mapping, cluster_accuracy, normalized_mutual_info

LABELS = np.repeat(np.arange(4), 5)  # 4 classes of 5


@pytest.mark.parametrize("perm", list(itertools.permutations(range(4))))
def test_a_perfect_clustering_under_any_permutation_scores_100_percent(perm):
    clusters = np.array(perm)[LABELS]
    assert cluster_accuracy(LABELS, clusters) == 1.0
    assert normalized_mutual_info(LABELS, clusters) == pytest.approx(1.0)
    assert best_cluster_mapping(LABELS, clusters) == {perm[c]: c for c in range(4)}


def test_cluster_ids_need_not_be_class_ids():
    assert cluster_accuracy(LABELS, 10 * LABELS + 7) == 1.0


def test_known_partial_answer():
    # classes 0,0,0,1,1,1; clusters 5,5,6,6,6,6: best match 5->0, 6->1 gets 2 + 3 of 6 right.
    labels = np.array([0, 0, 0, 1, 1, 1])
    clusters = np.array([5, 5, 6, 6, 6, 6])
    assert cluster_accuracy(labels, clusters) == pytest.approx(5 / 6)
    # The matching is one-to-one: two clusters can't both claim class 0.
    assert cluster_accuracy(np.array([0, 0, 0, 0]), np.array([1, 1, 2, 2])) == 0.5


def test_one_cluster_for_everything():
    assert cluster_accuracy(LABELS, np.zeros_like(LABELS)) == pytest.approx(0.25)
    assert normalized_mutual_info(LABELS, np.zeros_like(LABELS)) == pytest.approx(0.0)


def test_nmi_by_hand():
    # Two balanced classes; clusters split one class in half.
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    clusters = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    # I(L;C) = H(L) = ln 2 (C determines L); H(C) = 1.5 ln 2; arithmetic NMI = 1 / 1.25.
    assert normalized_mutual_info(labels, clusters) == pytest.approx(0.8)
    assert cluster_accuracy(labels, clusters) == pytest.approx(6 / 8)


@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=40),
    st.permutations(range(5)),
)
def test_scores_do_not_depend_on_cluster_names(pairs, perm):
    labels, clusters = (np.array(column) for column in zip(*pairs, strict=True))
    renamed = np.array(perm)[clusters]
    assert cluster_accuracy(labels, renamed) == cluster_accuracy(labels, clusters)
    assert normalized_mutual_info(labels, renamed) == pytest.approx(
        normalized_mutual_info(labels, clusters)
    )
    # Never worse than the identity matching, never better than perfect.
    assert (labels == clusters).mean() <= cluster_accuracy(labels, clusters) <= 1.0


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="1-D of one length"):
        cluster_accuracy(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="empty"):
        normalized_mutual_info(np.zeros(0), np.zeros(0))
