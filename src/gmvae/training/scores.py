"""Clustering scores as a torchmetrics Metric, so that they gather across devices like the rest."""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from gmvae.training.clustering import cluster_accuracy, normalized_mutual_info


class ClusteringScores(Metric):
    """Collects (cluster, class) pairs; ``compute`` gives ``{"cluster_accuracy", "nmi"}``.

    Both scores need the whole set at once (the best matching is global), so the
    pairs are kept, concatenated across processes, and scored with
    :mod:`gmvae.training.clustering`.
    """

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("clusters", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")

    def update(self, clusters: torch.Tensor, labels: torch.Tensor) -> None:
        self.clusters.append(clusters.detach().flatten())
        self.labels.append(labels.detach().flatten())

    def compute(self) -> dict[str, float]:
        clusters = dim_zero_cat(self.clusters).cpu().numpy()
        labels = dim_zero_cat(self.labels).cpu().numpy()
        return {
            "cluster_accuracy": cluster_accuracy(labels, clusters),
            "nmi": normalized_mutual_info(labels, clusters),
        }
