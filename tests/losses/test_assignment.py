import pytest
import torch

from gmvae.errors import ConfigError
from gmvae.losses import knn_assign


def assign(q, r, labels, k, c=3, mask=None):
    return knn_assign(
        torch.tensor(q, dtype=torch.float32),
        torch.tensor(r, dtype=torch.float32),
        torch.tensor(labels),
        k=k,
        num_classes=c,
        reference_mask=None if mask is None else torch.tensor(mask),
    ).tolist()


def test_nearest_neighbour_wins_with_k_1():
    assert assign([[0.1], [2.9]], [[0.0], [3.0]], [0, 1], k=1) == [0, 1]


def test_inverse_distance_weights_beat_majority():
    # Query at 0: one class-2 neighbour at distance 1 (weight 1) against two class-0
    # neighbours at distance 3 (weights 1/3 + 1/3): 1/distance decides, not the count.
    assert assign([[0.0]], [[1.0], [3.0], [-3.0]], [2, 0, 0], k=3) == [2]
    # Move the class-2 neighbour to distance 1.6 (weight 0.625 < 0.667): the pair wins.
    assert assign([[0.0]], [[1.6], [3.0], [-3.0]], [2, 0, 0], k=3) == [0]


def test_k_larger_than_one_class_count():
    # Class 1 has a single member; with k = 4 the three class-0 references vote too.
    refs = [[0.5], [1.0], [1.1], [1.2]]
    assert assign([[0.0]], refs, [1, 0, 0, 0], k=4) == [0]  # 2 vs 1/1 + 1/1.1 + 1/1.2
    assert assign([[0.0]], refs, [1, 0, 0, 0], k=1) == [1]


def test_ties_go_to_the_lowest_class_index():
    assert assign([[0.0]], [[1.0], [-1.0]], [2, 1], k=2) == [1]


def test_zero_distance_decides():
    assert assign([[1.0]], [[1.0], [1.01], [0.99]], [2, 0, 0], k=3) == [2]


def test_masked_references_never_vote():
    # The nearest reference is masked out (an unlabeled row), so class 0 wins.
    assert assign([[0.0]], [[0.1], [1.0]], [-1, 0], k=1, mask=[False, True]) == [0]


def test_k_above_reference_count_is_an_error():
    with pytest.raises(ConfigError, match="knn_k=3"):
        assign([[0.0]], [[1.0], [2.0]], [0, 1], k=3)


def test_no_gradient_flows_through_assignments():
    q = torch.randn(4, 2, requires_grad=True)
    out = knn_assign(q, q, torch.tensor([0, 1, 0, 1]), k=2, num_classes=2)
    assert not out.requires_grad and out.dtype == torch.int64
