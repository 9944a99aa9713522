import itertools
import math

import pytest
import torch

from gmvae.errors import ConfigError
from gmvae.losses import build_metric_loss, lifted_structured_loss


def lifted_by_hand(x: torch.Tensor, y: torch.Tensor, margin: float) -> float:
    """Song et al. 2016, Eq. 4, looping over ordered positive pairs."""
    n = len(y)
    d = [[float((x[i] - x[j]).norm()) for j in range(n)] for i in range(n)]
    terms = []
    for i, j in itertools.permutations(range(n), 2):
        if y[i] != y[j]:
            continue
        s = sum(math.exp(margin - d[i][k]) for k in range(n) if y[k] != y[i])
        s += sum(math.exp(margin - d[j][m]) for m in range(n) if y[m] != y[j])
        j_ij = (math.log(s) if s > 0 else 0.0) + d[i][j]
        terms.append(max(j_ij, 0.0) ** 2 / 2)
    return sum(terms) / len(terms) if terms else 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lifted_matches_hand_loop(dtype):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(9, 4, generator=g, dtype=dtype)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 0, 1])
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    for margin in (0.5, 2.0):
        assert lifted_structured_loss(x, y, margin).item() == pytest.approx(
            lifted_by_hand(x, y, margin), rel=tol
        )


def test_lifted_one_class_batch_has_no_negatives():
    x = torch.randn(4, 3, dtype=torch.float64)
    y = torch.zeros(4, dtype=torch.long)
    assert lifted_structured_loss(x, y, 1.0).item() == pytest.approx(lifted_by_hand(x, y, 1.0))


def test_lifted_gradients_are_finite_with_duplicate_features():
    x = torch.randn(3, 5).repeat(2, 1).requires_grad_()  # each row twice: zero distances
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    lifted_structured_loss(x, y, 2.0).backward()
    assert torch.isfinite(x.grad).all()


def test_lifted_matches_pytorch_metric_learning_oracle():
    pytest.importorskip("pytorch_metric_learning")
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.losses import LiftedStructureLoss

    g = torch.Generator().manual_seed(0)
    for margin, n, c in ((2.0, 40, 10), (0.5, 30, 3), (1.0, 24, 2)):
        x = torch.randn(n, 8, generator=g, dtype=torch.float64)
        y = torch.randint(c, (n,), generator=g)
        oracle = LiftedStructureLoss(
            neg_margin=margin, pos_margin=0, distance=LpDistance(normalize_embeddings=False)
        )
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        ours, theirs = lifted_structured_loss(xa, y, margin), oracle(xb, y)
        ours.backward()
        theirs.backward()
        assert ours.item() == pytest.approx(theirs.item(), rel=1e-9)
        torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-7, atol=1e-10)


def test_any_pml_loss_can_be_named():
    pytest.importorskip("pytorch_metric_learning")
    loss = build_metric_loss("TripletMarginLoss", 1.0, {"margin": 0.3})
    x = torch.randn(10, 4, requires_grad=True)
    value = loss(x, torch.tensor([0, 1] * 5))
    value.backward()
    assert value.item() >= 0 and x.grad is not None


def test_unknown_metric_loss_is_a_clear_error():
    pytest.importorskip("pytorch_metric_learning")
    with pytest.raises(ConfigError, match="NoSuchLoss"):
        build_metric_loss("NoSuchLoss", 1.0, {})
    with pytest.raises(ConfigError, match="metric_margin"):
        build_metric_loss("lifted", 1.0, {"margin": 3})
