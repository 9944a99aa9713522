"""``fast_kernels`` changes kernels, never the maths: the same steps give the same weights."""

from __future__ import annotations

import pytest
import torch

from gmvae.model.fast_kernels import FAST_LAYERS
from gmvae.training.module import GMVAEModule

NETWORK = {"network": "conv", "feature_size": 16, "latent_size": 8}


def _module(fast: bool) -> GMVAEModule:
    torch.manual_seed(0)
    return GMVAEModule((1, 28, 28), 3, network=NETWORK, loss={"knn_k": 2}, fast_kernels=fast)


@pytest.mark.parametrize("fast", [True, False])
def test_the_option_switches_the_layers_and_the_optimizer(fast):
    module = _module(fast)
    layers = [m for m in module.model.modules() if isinstance(m, FAST_LAYERS)]
    assert len(layers) == 7 and all(m.as_matmul is fast for m in layers)
    assert bool(module.configure_optimizers().param_groups[0]["fused"]) is fast
    assert module.hparams["fast_kernels"] is fast


def test_fast_and_plain_kernels_train_to_the_same_weights(two_threads):
    """In float64, where rounding cannot hide a difference in the maths (in float32 Adam's
    first steps, lr * sign(grad), magnify rounding in near-zero gradients)."""
    x = torch.rand(12, 1, 28, 28, dtype=torch.float64)
    labels = torch.tensor([-1] * 6 + [0, 1, 2, 0, 1, 2])
    trained = []
    for fast in (True, False):
        module = _module(fast).double()
        optimizer = module.configure_optimizers()
        for step in range(3):
            torch.manual_seed(step)  # the same Gumbel and z noise for both
            out = module.model(x, temperature=0.8)
            optimizer.zero_grad()
            module.criterion(out, x, labels).total.backward()
            optimizer.step()
        trained.append(module.model.state_dict())
    fast, plain = trained
    assert fast.keys() == plain.keys()
    for name in fast:
        torch.testing.assert_close(fast[name], plain[name], rtol=1e-9, atol=1e-11, msg=name)
