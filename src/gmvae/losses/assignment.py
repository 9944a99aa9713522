"""Distance-weighted k-NN assignment of labels to unlabeled features (paper Eq. 8)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gmvae.errors import ConfigError


def masked_distances(
    query: torch.Tensor, reference: torch.Tensor, reference_mask: torch.Tensor | None, k: int
) -> torch.Tensor:
    """Euclidean distances (Q, R), references outside ``reference_mask`` at infinity."""
    if k > reference.shape[0]:
        raise ConfigError(
            f"knn_k={k} is larger than the {reference.shape[0]} labeled examples in the batch"
        )
    dist = torch.cdist(query.float(), reference.float())
    if reference_mask is not None:
        dist = dist.masked_fill(~reference_mask, float("inf"))
    return dist


def knn_votes(
    dist: torch.Tensor, reference_labels: torch.Tensor, *, k: int, num_classes: int, eps: float
) -> torch.Tensor:
    """Per-class sums of 1/distance over each query's k nearest references, (Q, c)."""
    nearest, idx = dist.topk(k, dim=1, largest=False)  # (Q, k)
    weights = 1.0 / nearest.clamp_min(eps)  # 1/inf = 0 for masked references
    labels = reference_labels[idx].clamp_min(0)  # (Q, k); masked rows carry zero weight
    votes = torch.zeros(dist.shape[0], num_classes, device=dist.device)
    return votes.scatter_add_(1, labels, weights)


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
    dist = masked_distances(query, reference, reference_mask, k)
    votes = knn_votes(dist, reference_labels, k=k, num_classes=num_classes, eps=eps)
    return votes.argmax(dim=1)


class AlignedAssignment(nn.Module):
    """k-NN assignment that corrects the classes it keeps over-assigning.

    Early in training the k-NN vote can send most of one class to another (MNIST-100:
    half the 5s to 3), and L_A and L_M then train the model to agree: the error locks
    in (docs/RESULTS.md, "Early lock-in"). Distribution alignment (Berthelot et al.,
    ReMixMatch, 2019) counters that: each unlabeled row's class scores are divided by
    a running mean of the scores over the unlabeled rows and multiplied by a running
    mean of the labeled rows' class frequencies, so a class assigned more often than
    the labels say it occurs loses its ambiguous rows, and one assigned less gains them.

    The scores mix the paper's vote (normalised per row) with a softmax over the
    classes of each class's nearest labeled reference, relative to the nearest of all:
    the vote alone is zero outside the k neighbours' classes, so no rescaling could
    move a row whose neighbours all carry the over-assigned label. A row far closer to
    one class than to any other keeps it; with uniform running means, rows whose
    neighbours agree keep the paper's label.

    The running means are buffers: saved in checkpoints, so a resume continues them.
    """

    def __init__(
        self, num_classes: int, *, momentum: float = 0.99, temperature: float = 0.1
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.momentum = momentum
        self.temperature = temperature
        uniform = torch.full((num_classes,), 1.0 / num_classes)
        self.register_buffer("assigned_marginal", uniform.clone())
        self.register_buffer("labeled_marginal", uniform.clone())

    @torch.no_grad()
    def forward(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        *,
        k: int,
        eps: float = 1e-12,
    ) -> torch.Tensor:
        """Classes of every row of ``features`` (B, D) against its labeled rows
        (``labels`` >= 0), updating the running means from this batch; (B,) int64."""
        labeled = labels >= 0
        classes = labels.clamp_min(0)  # unlabeled rows are masked wherever this is used
        dist = masked_distances(features, features, labeled, k)
        votes = knn_votes(dist, labels, k=k, num_classes=self.num_classes, eps=eps)
        by_vote = votes / votes.sum(dim=1, keepdim=True).clamp_min(eps)
        # Each class's nearest labeled reference, relative to the nearest of all (>= 1).
        per_class = torch.full_like(votes, float("inf")).scatter_reduce(
            1, classes.expand_as(dist), dist, "amin"
        )
        nearest = per_class.min(dim=1, keepdim=True).values.clamp_min(eps)
        relative = (per_class / nearest).clamp_max(1e4)  # finite: the softmax stays defined
        by_distance = torch.softmax(-(relative - 1.0) / self.temperature, dim=1)
        scores = 0.5 * (by_vote + by_distance)

        self._follow(self.assigned_marginal, scores, ~labeled)
        self._follow(self.labeled_marginal, F.one_hot(classes, self.num_classes).float(), labeled)
        aligned = scores * self.labeled_marginal / self.assigned_marginal.clamp_min(eps)
        return aligned.argmax(dim=1)

    def _follow(self, mean: torch.Tensor, rows: torch.Tensor, mask: torch.Tensor) -> None:
        """Move the running ``mean`` towards the mean of the ``rows`` where ``mask``; a
        batch without such rows leaves it as it was (a tensor condition: no host sync)."""
        weights = mask.to(rows.dtype).unsqueeze(1)
        batch = (rows * weights).sum(0) / weights.sum().clamp_min(1.0)
        mean.lerp_(torch.where(mask.any(), batch, mean), 1.0 - self.momentum)
