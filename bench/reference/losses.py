"""The author's loss (``LossFunctions``, ``assign_labels_semisupervised``, ``SSVAE.create_model``).

total = w_rec * BCE + w_gauss * KL(q(z|x) || N(0, I)) + w_cat * KL(q(y|x) || U(K))
      + w_assign * CE(logits, k-NN majority labels) + w_metric * lifted loss(features),
every term a mean over the batch's rows. The unlabeled rows come first, the labeled last.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from gmvae.losses.embedding import lifted_structured_loss
from reference.network import EPS, AuthorOutput


@dataclass(frozen=True)
class AuthorWeights:
    """The MNIST weights of the author's ``run.sh`` (``-w_* ... -knn 7``; margin: main.py's default)."""

    reconstruction: float = 1.0
    gaussian: float = 1.1
    categorical: float = 1.2
    assignment: float = 4.7
    metric: float = 0.85
    knn: int = 7
    margin: float = 0.5


class AuthorLosses(NamedTuple):
    reconstruction: torch.Tensor
    gaussian: torch.Tensor
    categorical: torch.Tensor
    assignment: torch.Tensor
    metric: torch.Tensor
    total: torch.Tensor
    assigned: torch.Tensor  # (B,) the k-NN labels of the unlabeled rows, then the true ones


def knn_majority(
    features: torch.Tensor, labeled_labels: torch.Tensor, k: int, num_classes: int
) -> torch.Tensor:
    """Majority label of each unlabeled row's k nearest labeled rows (ties: the lowest class).

    features (B, F) with the L labeled rows last, labeled_labels (L,) -> (B - L,). Squared
    distances from the Gram matrix, clamped at 0, as ``assign_labels_semisupervised``.
    """
    dot = features @ features.T
    norms = dot.diagonal()
    distances = (norms[:, None] - 2.0 * dot + norms[None, :]).clamp_min(0.0)
    unlabeled = features.shape[0] - labeled_labels.shape[0]
    to_labeled = distances[:unlabeled, unlabeled:]  # (B - L, L)
    nearest = to_labeled.topk(k, dim=1, largest=False).indices
    votes = F.one_hot(labeled_labels[nearest], num_classes).sum(1)  # (B - L, K) counts
    return votes.argmax(1)  # the first maximum, as tf.argmax


def author_losses(
    out: AuthorOutput, x: torch.Tensor, labeled_labels: torch.Tensor, weights: AuthorWeights
) -> AuthorLosses:
    """The training loss of ``SSVAE.create_model`` for one batch; x (B, 784), labeled last."""
    p = out.reconstruction
    bce = -(x * torch.log(p + EPS) + (1 - x) * torch.log(1 - p + EPS)).sum(1).mean()
    gaussian = (
        -0.5 * (1 + out.log_var - out.log_var.exp() - (out.mean + EPS).square()).sum(1)
    ).mean()
    num_classes = out.logits.shape[1]
    categorical = (out.prob * (out.log_prob - math.log(1.0 / num_classes))).sum(1).mean()
    with torch.no_grad():
        assigned = knn_majority(out.features, labeled_labels, weights.knn, num_classes)
        assigned = torch.cat([assigned, labeled_labels])
    assignment = F.cross_entropy(out.logits, assigned)
    # tf.contrib's lifted_struct_loss: the same sum as gmvae's (docs/PERFORMANCE.md)
    metric = lifted_structured_loss(out.features, assigned, weights.margin)
    total = (
        weights.reconstruction * bce
        + weights.gaussian * gaussian
        + weights.categorical * categorical
        + weights.assignment * assignment
        + weights.metric * metric
    )
    return AuthorLosses(bce, gaussian, categorical, assignment, metric, total, assigned)
