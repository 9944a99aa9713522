"""The variational terms of Eq. 7: reconstruction L_R, Gaussian L_G and categorical L_C.

Each is a sum over dimensions and a mean over the batch; L_R can average over pixels
instead (the paper's "mean square error").
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from gmvae.config import RECONSTRUCTIONS, REDUCTIONS
from gmvae.errors import ConfigError

_LOG_2PI = math.log(2 * math.pi)


def reconstruction_loss(
    x: torch.Tensor, logits: torch.Tensor, kind: str, reduction: str = "sum"
) -> torch.Tensor:
    """L_R (Eq. 4): ``mse`` (Gaussian p(x|z)) or ``bce`` (Bernoulli) on sigmoid(logits),
    summed (``sum``) or averaged (``mean``) over pixels, then averaged over the batch."""
    if kind == "mse":
        per_pixel = (torch.sigmoid(logits) - x).pow(2)
    elif kind == "bce":
        per_pixel = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    else:
        raise ConfigError(
            f"reconstruction={kind!r} is not allowed; choose one of {RECONSTRUCTIONS}"
        )
    if reduction == "sum":
        return per_pixel.flatten(1).sum(1).mean()
    if reduction == "mean":
        return per_pixel.mean()
    raise ConfigError(f"reduction={reduction!r} is not allowed; choose one of {REDUCTIONS}")


def log_normal(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """log N(x | mean, diag(var)), summed over the last dimension; (B, D) -> (B,)."""
    return -0.5 * (_LOG_2PI + var.log() + (x - mean).pow(2) / var).sum(-1)


def gaussian_kl(
    z: torch.Tensor,
    mean: torch.Tensor,
    var: torch.Tensor,
    prior_mean: torch.Tensor,
    prior_var: torch.Tensor,
) -> torch.Tensor:
    """L_G = KL(q(z|x_hat,y) || p(z|y)), one-sample estimate log q(z) - log p(z) (Eq. 7)."""
    return (log_normal(z, mean, var) - log_normal(z, prior_mean, prior_var)).mean()


def categorical_kl(logits: torch.Tensor) -> torch.Tensor:
    """L_C = KL(q(y|x_hat) || Uniform(c)) = sum_j q_j log q_j + log c (Eq. 7)."""
    log_q = F.log_softmax(logits, dim=-1)
    return (log_q.exp() * log_q).sum(-1).mean() + math.log(logits.shape[-1])
