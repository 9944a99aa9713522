"""Metric-embedding loss L_M: the lifted structured loss (Song et al. 2016) or any PML loss."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from gmvae.errors import ConfigError

MetricLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def lifted_structured_loss(
    features: torch.Tensor, labels: torch.Tensor, margin: float
) -> torch.Tensor:
    """Lifted structured loss of Song et al. 2016 (their Eq. 4), in O(B^2) memory.

    For every ordered positive pair (i, j), i != j:
    J_ij = log(sum_{k: y_k != y_i} exp(m - D_ik) + sum_{l: y_l != y_j} exp(m - D_jl)) + D_ij,
    and the loss is the mean over those pairs of relu(J_ij)^2 / 2, with Euclidean D.
    This is pytorch-metric-learning's ``LiftedStructureLoss(pos_margin=0,
    neg_margin=margin)`` with unnormalised Lp distances; where it builds a
    (pairs x negatives) tensor, the per-row log-sum-exp here is shared by all pairs.
    features (B, D), labels (B,) -> scalar.
    """
    n = features.shape[0]
    dist = torch.cdist(features, features)  # (B, B); cdist's backward is safe at 0
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(n, dtype=torch.bool, device=features.device)
    lowest = torch.finfo(dist.dtype).min  # a finite "minus infinity": gradients stay finite
    neg_logits = (margin - dist).masked_fill(same, lowest)
    row_lse = torch.logsumexp(neg_logits, dim=1)  # (B,) log sum over i's negatives
    pair_lse = torch.logaddexp(row_lse[:, None], row_lse[None, :])  # (B, B)
    # With one class in the batch there are no negatives: the term is 0, as in PML.
    has_negatives = (~same).any()
    pair_lse = torch.where(has_negatives, pair_lse, torch.zeros_like(pair_lse))
    per_pair = F.relu(pair_lse + dist).pow(2) / 2
    count = positive.sum().clamp_min(1)
    return (per_pair * positive).sum() / count


class LiftedStructuredLoss(torch.nn.Module):
    def __init__(self, margin: float) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return lifted_structured_loss(features.float(), labels, self.margin)


def build_metric_loss(name: str, margin: float, kwargs: dict[str, Any]) -> MetricLoss:
    """``lifted`` (ours) or the class name of a pytorch-metric-learning loss with ``kwargs``."""
    if name == "lifted":
        if kwargs:
            raise ConfigError(f"metric 'lifted' takes only metric_margin, not {sorted(kwargs)}")
        return LiftedStructuredLoss(margin)
    try:
        from pytorch_metric_learning import losses
    except ImportError:
        raise ConfigError(
            f"metric={name!r} needs pytorch-metric-learning: pip install pytorch-metric-learning"
        ) from None
    cls = getattr(losses, name, None)
    if not (isinstance(cls, type) and issubclass(cls, losses.BaseMetricLossFunction)):
        raise ConfigError(
            f"metric={name!r} is neither 'lifted' nor a pytorch-metric-learning loss "
            "(e.g. TripletMarginLoss, ContrastiveLoss, MultiSimilarityLoss)"
        )
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"metric_kwargs for {name}: {exc}") from None
