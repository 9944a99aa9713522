import torch

from gmvae.model import gumbel_softmax, reparameterize


def test_gumbel_softmax_is_a_distribution_and_seeded():
    logits = torch.randn(6, 4)
    a = gumbel_softmax(logits, 0.7, generator=torch.Generator().manual_seed(3))
    b = gumbel_softmax(logits, 0.7, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a.sum(-1), torch.ones(6))
    assert (a >= 0).all() and torch.isfinite(a).all()


def test_gumbel_softmax_follows_the_categorical_at_low_temperature():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1]])).expand(20000, 3)
    y = gumbel_softmax(logits, 0.01, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(y.argmax(-1), minlength=3).float() / len(y)
    torch.testing.assert_close(freq, torch.tensor([0.7, 0.2, 0.1]), atol=0.015, rtol=0)


def test_hard_sample_is_one_hot_with_gradient():
    logits = torch.randn(5, 3, requires_grad=True)
    y = gumbel_softmax(logits, 1.0, hard=True)
    assert set(y.detach().unique().tolist()) <= {0.0, 1.0}
    (y * torch.arange(3.0)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_reparameterize_moments():
    mean, var = torch.full((50000, 1), 2.0), torch.full((50000, 1), 9.0)
    z = reparameterize(mean, var, generator=torch.Generator().manual_seed(0))
    assert abs(z.mean().item() - 2.0) < 0.05 and abs(z.std().item() - 3.0) < 0.05


def test_noise_and_samples_are_float32_under_bf16_inputs():
    """bf16 noise has about 1,700 distinct uniforms, cutting the Gumbel tail off near 5.5."""
    logits = torch.zeros(20000, 2, dtype=torch.bfloat16)
    y = gumbel_softmax(logits, 1.0, generator=torch.Generator().manual_seed(0))
    assert y.dtype == torch.float32
    # With equal logits, y_0 = sigmoid(g_0 - g_1): its distinct values count the noise's.
    assert y[:, 0].unique().numel() > 15000
    mean = torch.zeros(20000, 1, dtype=torch.bfloat16)
    z = reparameterize(mean, torch.ones_like(mean), generator=torch.Generator().manual_seed(0))
    assert z.dtype == torch.float32 and z.unique().numel() > 15000
    assert z.abs().max() > 3.5  # the tail is there: P(|z| > 3.5) * 20000 is about 9
