import pytest
import torch

from gmvae.errors import ConfigError
from gmvae.losses import AlignedAssignment, knn_assign
from gmvae.losses.assignment import knn_votes, masked_distances


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


# ---- AlignedAssignment ---------------------------------------------------------------


def _batch(unlabeled, labeled, labeled_classes):
    """Features of unlabeled rows then labeled rows (1-D points), and their labels."""
    features = torch.tensor([[x] for x in [*unlabeled, *labeled]], dtype=torch.float32)
    labels = torch.tensor([-1] * len(unlabeled) + list(labeled_classes))
    return features, labels


def test_aligned_keeps_the_paper_labels_while_the_classes_are_balanced():
    torch.manual_seed(0)
    features = torch.randn(60, 5)
    labels = torch.cat([torch.full((30,), -1), torch.arange(3).repeat(10)])
    aligner = AlignedAssignment(3, momentum=0.0)  # this batch's means only
    plain = knn_assign(features, features, labels, k=3, num_classes=3, reference_mask=labels >= 0)
    aligned = aligner(features, labels, k=3)
    # Rows whose three neighbours agree keep their class whatever the means.
    dist = masked_distances(features, features, labels >= 0, 3)
    votes = knn_votes(dist, labels, k=3, num_classes=3, eps=1e-12)
    unanimous = (votes > 0).sum(1) == 1
    assert torch.equal(aligned[unanimous], plain[unanimous])
    assert aligned.shape == (60,) and aligned.dtype == torch.int64


def test_aligned_moves_ambiguous_rows_away_from_an_over_assigned_class():
    # Labeled: class 0 at 0.0, class 1 at 1.0. Unlabeled rows sit at 0.40-0.49: all
    # nearer to class 0, the last ones barely.
    unlabeled = [0.40 + 0.01 * i for i in range(10)]
    features, labels = _batch(unlabeled, [0.0, 1.0], [0, 1])
    plain = knn_assign(features, features, labels, k=1, num_classes=2, reference_mask=labels >= 0)
    assert set(plain[:10].tolist()) == {0}
    aligner = AlignedAssignment(2, momentum=0.9)
    for _ in range(50):  # the running mean learns that class 0 takes nearly every row
        aligned = aligner(features, labels, k=1)
    assert aligner.assigned_marginal[0] > 0.55
    assert aligner.labeled_marginal.tolist() == pytest.approx([0.5, 0.5])
    moved = aligned[:10].tolist()
    assert 0 in moved and 1 in moved  # some rows move, ...
    assert moved == sorted(moved)  # ... the ones nearest the other class first
    assert aligned[10:].tolist() == [0, 1]  # the labeled rows' own classes


def test_aligned_running_means_follow_the_rows_of_their_kind():
    features, labels = _batch([0.1, 0.2, 0.9], [0.0, 1.0, 1.1], [0, 1, 1])
    aligner = AlignedAssignment(2, momentum=0.0)
    aligner(features, labels, k=1)
    assert aligner.labeled_marginal.tolist() == pytest.approx([1 / 3, 2 / 3])
    assert aligner.assigned_marginal.sum().item() == pytest.approx(1.0)
    assert aligner.assigned_marginal[0] > aligner.assigned_marginal[1]  # two rows near 0
    # A batch without unlabeled rows leaves the assigned mean as it was.
    before = aligner.assigned_marginal.clone()
    only_labeled = torch.tensor([[0.0], [1.0]]), torch.tensor([0, 1])
    aligner(*only_labeled, k=1)
    assert torch.equal(aligner.assigned_marginal, before)
    assert torch.isfinite(aligner.labeled_marginal).all()


def test_aligned_is_only_built_when_asked_for():
    from gmvae.config import LossConfig
    from gmvae.losses import GMVAELoss

    plain = GMVAELoss(LossConfig(), 10)
    aligned = GMVAELoss(LossConfig(align_assignments=True), 10)
    assert plain.aligner is None and not list(plain.buffers())  # old checkpoints still load
    assert set(aligned.state_dict()) == {
        "aligner.assigned_marginal",
        "aligner.labeled_marginal",
    }
    with pytest.raises(ConfigError, match="align_assignments"):
        LossConfig(align_assignments="yes")
