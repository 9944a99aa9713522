import pytest
import torch

from gmvae.config import LossConfig
from gmvae.errors import ConfigError
from gmvae.losses import knn_assign
from gmvae.losses.propagation import (
    PropagatedAssignment,
    certainty,
    conjugate_gradient,
    knn_affinity,
    knn_graph,
    propagate_labels,
    propagation_scores,
    sparse_knn_affinity,
)


def two_arcs() -> tuple[torch.Tensor, torch.Tensor]:
    """Class 0: a long chain from its one label at x=0 to x=10; class 1: a tight cluster
    around its label at (11, 3). The chain's far end is nearer to label 1 than to label 0."""
    chain = torch.stack([torch.linspace(0, 10, 41), torch.zeros(41)], 1)
    blob = torch.tensor([11.0, 3.0]) + 0.3 * torch.randn(
        20, 2, generator=torch.Generator().manual_seed(0)
    )
    features = torch.cat([chain, blob])
    labels = torch.full((61,), -1)
    labels[0], labels[41] = 0, 1
    truth = torch.cat([torch.zeros(41, dtype=torch.long), torch.ones(20, dtype=torch.long)])
    return features, labels, truth


def test_labels_follow_the_chain_where_the_nearest_label_does_not():
    features, labels, truth = two_arcs()
    vote = knn_assign(features, features, labels, k=1, num_classes=2, reference_mask=labels >= 0)
    assert (vote[30:41] == 1).all()  # the paper's vote gives the chain's far end to class 1
    propagated = propagate_labels(features, labels, 2, graph_k=4)
    assert torch.equal(propagated, truth)


def test_affinity_is_symmetric_normalised_and_sparse():
    features = torch.randn(30, 5, generator=torch.Generator().manual_seed(1))
    s = knn_affinity(features, 4)
    torch.testing.assert_close(s, s.T)
    assert (s.diagonal() == 0).all() and (s >= 0).all()
    assert ((s > 0).sum(1) >= 4).all() and ((s > 0).sum(1) < 30).all()
    assert torch.linalg.eigvalsh(s).abs().max() <= 1 + 1e-5  # I - alpha S stays positive


def test_conjugate_gradient_solves_a_positive_definite_system():
    g = torch.Generator().manual_seed(2)
    m = torch.randn(12, 12, generator=g)
    a = m @ m.T + 12 * torch.eye(12)
    rhs = torch.randn(12, 3, generator=g)
    x = conjugate_gradient(lambda v: a @ v, rhs, iterations=30)
    torch.testing.assert_close(x, torch.linalg.solve(a, rhs), atol=1e-4, rtol=1e-4)


def test_the_queue_keeps_the_newest_unlabeled_rows_and_feeds_the_graph():
    features, labels, truth = two_arcs()
    assigner = PropagatedAssignment(2, 2, memory=50)
    # First call: only the labeled rows and the blob are in the batch; the chain comes later.
    first = torch.cat([features[:1], features[41:]])
    first_labels = torch.cat([labels[:1], labels[41:]])
    assigner(first, first_labels)
    assert int(assigner.filled) == 19  # the blob's unlabeled rows
    torch.testing.assert_close(assigner.queue[:19], features[42:])
    out = assigner(
        torch.cat([features[:41], features[41:42]]), torch.cat([labels[:41], labels[41:42]])
    )
    assert torch.equal(out[:41], truth[:41]) and out[41] == 1
    assert int(assigner.filled) == 50  # capped; the newest rows come first
    torch.testing.assert_close(assigner.queue[:40], features[1:41])


def test_propagation_and_alignment_do_not_combine():
    with pytest.raises(ConfigError, match="align_assignments"):
        LossConfig(pseudo_labels="propagation", align_assignments=True)


def test_a_loaded_queue_keeps_its_fill_count():
    features, labels, _ = two_arcs()
    trained = PropagatedAssignment(2, 2, memory=50)
    trained(features, labels)
    restored = PropagatedAssignment(2, 2, memory=50)
    restored.load_state_dict(trained.state_dict())
    assert restored._filled == trained._filled == 50
    torch.testing.assert_close(restored(features, labels), trained(features, labels))


def test_the_sparse_graph_equals_the_dense_one_in_any_chunking():
    features = torch.randn(90, 6, generator=torch.Generator().manual_seed(3))
    dense = knn_affinity(features, 7)
    for chunk in (1, 16, 90, 1000):
        torch.testing.assert_close(sparse_knn_affinity(features, 7, chunk=chunk).to_dense(), dense)
    nearest, idx = knn_graph(features, 7, chunk=16)
    full = torch.cdist(features, features).fill_diagonal_(float("inf")).topk(7, largest=False)
    torch.testing.assert_close(nearest, full.values)
    assert torch.equal(idx, full.indices)


def test_sparse_propagation_gives_the_dense_classes():
    features, labels, truth = two_arcs()
    assert torch.equal(propagate_labels(features, labels, 2, graph_k=4, sparse=True), truth)
    noise = torch.randn(200, 5, generator=torch.Generator().manual_seed(4))
    known = torch.full((200,), -1)
    known[:12] = torch.arange(12) % 3
    torch.testing.assert_close(
        propagate_labels(noise, known, 3, sparse=True), propagate_labels(noise, known, 3)
    )


def test_certainty_is_one_for_one_class_and_zero_for_uniform_scores():
    scores = torch.tensor([[0.0, 3.0, 0.0], [1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    # the third: entropy log 2 of log 3
    expected = torch.tensor(
        [1.0, 0.0, 1 - torch.log(torch.tensor(2.0)) / torch.log(torch.tensor(3.0))]
    )
    assert torch.allclose(certainty(scores), expected, atol=1e-6)


def test_the_labels_are_the_largest_propagation_scores():
    noise = torch.randn(60, 5, generator=torch.Generator().manual_seed(3))
    known = torch.full((60,), -1)
    known[:3] = torch.tensor([0, 1, 2])
    scores = propagation_scores(noise, known, 3, sparse=True)
    assert scores.shape == (60, 3) and (scores >= 0).all()
    assert torch.equal(scores.argmax(1), propagate_labels(noise, known, 3, sparse=True))
