import math

import pytest
import torch
from torch.distributions import Normal

from gmvae.config import LossConfig
from gmvae.errors import ConfigError
from gmvae.losses import categorical_kl, gaussian_kl, log_normal, reconstruction_loss


def test_mse_reconstruction_is_sum_over_pixels_mean_over_batch():
    x = torch.rand(3, 1, 2, 2)
    logits = torch.randn(3, 1, 2, 2)
    p = torch.sigmoid(logits)
    hand = sum(float(((p[b] - x[b]) ** 2).sum()) for b in range(3)) / 3
    assert reconstruction_loss(x, logits, "mse").item() == pytest.approx(hand, rel=1e-6)


@pytest.mark.parametrize("kind", ["mse", "bce"])
def test_mean_reduction_averages_over_pixels(kind):
    """``mean`` is the paper's "mean square error": the sum's value over the pixel count."""
    x = torch.rand(3, 1, 4, 5, dtype=torch.float64)
    logits = torch.randn(3, 1, 4, 5, dtype=torch.float64)
    summed = reconstruction_loss(x, logits, kind, "sum")
    assert reconstruction_loss(x, logits, kind, "mean").item() == pytest.approx(
        summed.item() / 20, rel=1e-12
    )
    if kind == "mse":
        hand = (torch.sigmoid(logits) - x).pow(2).mean()
        assert reconstruction_loss(x, logits, kind, "mean").item() == pytest.approx(hand.item())


def test_unknown_reduction_names_the_choices():
    with pytest.raises(ConfigError, match="sum, mean"):
        LossConfig(reconstruction_reduction="median")
    with pytest.raises(ConfigError, match="sum"):
        reconstruction_loss(torch.rand(1, 4), torch.rand(1, 4), "mse", "max")


def test_bce_reconstruction_matches_hand_computation():
    x = torch.rand(2, 1, 3, 3, dtype=torch.float64)
    logits = torch.randn(2, 1, 3, 3, dtype=torch.float64)
    p = torch.sigmoid(logits)
    hand = -(x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1).mean()
    assert reconstruction_loss(x, logits, "bce").item() == pytest.approx(hand.item(), rel=1e-10)


def test_unknown_reconstruction_names_the_choices():
    with pytest.raises(ConfigError, match="mse"):
        reconstruction_loss(torch.rand(1, 4), torch.rand(1, 4), "l1")


def test_log_normal_matches_torch_distributions():
    x, mean = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    var = torch.rand(4, 5, dtype=torch.float64) + 0.1
    expected = Normal(mean, var.sqrt()).log_prob(x).sum(-1)
    torch.testing.assert_close(log_normal(x, mean, var), expected)


def test_gaussian_kl_is_log_q_minus_log_p_averaged():
    z, m, pm = (torch.randn(3, 2, dtype=torch.float64) for _ in range(3))
    v, pv = torch.rand(3, 2, dtype=torch.float64) + 0.5, torch.rand(3, 2, dtype=torch.float64) + 0.5
    hand = 0.0
    for b in range(3):
        for d in range(2):
            lq = -0.5 * (math.log(2 * math.pi * v[b, d]) + (z[b, d] - m[b, d]) ** 2 / v[b, d])
            lp = -0.5 * (math.log(2 * math.pi * pv[b, d]) + (z[b, d] - pm[b, d]) ** 2 / pv[b, d])
            hand += float(lq - lp)
    assert gaussian_kl(z, m, v, pm, pv).item() == pytest.approx(hand / 3, rel=1e-10)


def test_categorical_kl_against_uniform():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [10.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    q = torch.softmax(logits, -1)
    hand = sum(float((q[b] * (q[b] / 0.25).log()).sum()) for b in range(2)) / 2
    assert categorical_kl(logits).item() == pytest.approx(hand, rel=1e-10)
    assert categorical_kl(logits[:1]).item() == pytest.approx(0.0, abs=1e-12)  # uniform q
