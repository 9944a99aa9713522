"""Distance-weighted k-NN assignment of labels to unlabeled features (paper Eq. 8)."""

from __future__ import annotations

import torch

from gmvae.errors import ConfigError


@torch.no_grad()
def knn_assign(
    query: torch.Tensor,
    reference: torch.Tensor,
    reference_labels: torch.Tensor,
    *,
    k: int,
    num_classes: int,
    reference_mask: torch.Tensor | None = None,
    eps: float = 1e-12,
) -> torch.Tensor:
    """Class with the largest sum of 1/distance over the k nearest labeled references.

    query (Q, D), reference (R, D), reference_labels (R,) -> (Q,) int64.
    ``reference_mask`` (R,) bool marks usable references (others are never
    neighbours and, when fewer than k are usable, add no vote). A zero distance
    counts as 1/eps, so an exact match decides. Ties go to the lowest class index.
    The result is a target: no gradient flows through it. All matrix operations,
    no host synchronisation.
    """
    if k > reference.shape[0]:
        raise ConfigError(
            f"knn_k={k} is larger than the {reference.shape[0]} labeled examples in the batch"
        )
    dist = torch.cdist(query.float(), reference.float())  # (Q, R)
    if reference_mask is not None:
        dist = dist.masked_fill(~reference_mask, float("inf"))
    nearest, idx = dist.topk(k, dim=1, largest=False)  # (Q, k)
    weights = 1.0 / nearest.clamp_min(eps)  # 1/inf = 0 for masked references
    labels = reference_labels[idx].clamp_min(0)  # (Q, k); masked rows carry zero weight
    votes = torch.zeros(query.shape[0], num_classes, device=query.device)
    votes.scatter_add_(1, labels, weights)
    return votes.argmax(dim=1)
