"""Label propagation over a k-NN graph of the features: targets that follow the data's
manifold instead of the distance to the few labeled examples (not in the paper).

The paper's assignment (Eq. 8) labels each unlabeled row by its nearest *labeled* rows.
With 10 labels per class, a style of a class that none of its labeled examples shows (7s
written one way) can lie nearer to another class's labeled examples; the vote then gives
it that class, L_A and L_M pull it there, and the confusion locks in. Propagation (Zhou
et al., 2004; for deep semi-supervised learning Iscen et al., 2019) lets a label travel
along chains of near neighbours among the *unlabeled* rows too, so a style that connects
to its class through other unlabeled examples takes that class's label.

The graph holds the batch and a queue of the unlabeled features of recent batches (more
points per class than one batch has), all detached: the targets carry no gradient. For a
graph of a whole training set (``pseudo_labels='epoch_propagation'``) the affinity is a
sparse matrix built in row chunks, so that memory grows with N k, not N^2.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn


def knn_affinity(features: torch.Tensor, k: int) -> torch.Tensor:
    """Symmetric normalised affinity D^-1/2 W D^-1/2 of a k-NN graph, (N, N).

    W_ij = exp(-d_ij^2 / (s_i s_j)) for j among the k nearest neighbours of i (or i among
    j's), with s_i the distance from i to its k-th neighbour (local scaling, Zelnik-Manor
    and Perona, 2004), so dense and sparse classes get comparable weights.
    """
    n = features.shape[0]
    k = min(k, n - 1)
    dist = torch.cdist(features, features)  # (N, N)
    dist.fill_diagonal_(float("inf"))
    nearest, idx = dist.topk(k, dim=1, largest=False)  # (N, k)
    scale = nearest[:, -1].clamp_min(1e-12)  # (N,)
    weights = torch.exp(-nearest.pow(2) / (scale[:, None] * scale[idx]))
    w = torch.zeros(n, n, device=features.device).scatter_(1, idx, weights)
    w = torch.maximum(w, w.T)
    inv_sqrt_degree = w.sum(1).clamp_min(1e-12).rsqrt()
    return inv_sqrt_degree[:, None] * w * inv_sqrt_degree[None, :]


def knn_graph(
    features: torch.Tensor, k: int, *, chunk: int = 2048
) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances and indices (N, k) of every row's k nearest other rows, computed ``chunk``
    rows at a time (memory O(chunk N) instead of O(N^2))."""
    n = features.shape[0]
    k = min(k, n - 1)
    nearest, idx = [], []
    for start in range(0, n, chunk):
        dist = torch.cdist(features[start : start + chunk], features)
        rows = torch.arange(start, start + dist.shape[0], device=features.device)
        dist[rows - start, rows] = float("inf")  # a row is not its own neighbour
        d, i = dist.topk(k, dim=1, largest=False)
        nearest.append(d)
        idx.append(i)
    return torch.cat(nearest), torch.cat(idx)


def sparse_knn_affinity(features: torch.Tensor, k: int, *, chunk: int = 2048) -> torch.Tensor:
    """:func:`knn_affinity` as a sparse (N, N) CSR matrix, for graphs too large to hold dense."""
    n = features.shape[0]
    nearest, idx = knn_graph(features, k, chunk=chunk)
    scale = nearest[:, -1].clamp_min(1e-12)
    weights = torch.exp(-nearest.pow(2) / (scale[:, None] * scale[idx])).reshape(-1)
    rows = torch.arange(n, device=features.device).repeat_interleave(idx.shape[1])
    cols = idx.reshape(-1)
    # max(W, W^T): both directions of every edge, the larger weight where both exist.
    keys, inverse = torch.unique(
        torch.cat([rows * n + cols, cols * n + rows]), sorted=True, return_inverse=True
    )
    merged = torch.zeros(len(keys), device=features.device).scatter_reduce_(
        0, inverse, torch.cat([weights, weights]), "amax", include_self=False
    )
    rows, cols = keys // n, keys % n
    inv_sqrt_degree = (
        torch.zeros(n, device=features.device).index_add_(0, rows, merged).clamp_min(1e-12).rsqrt()
    )
    values = inv_sqrt_degree[rows] * merged * inv_sqrt_degree[cols]
    crow = torch.zeros(n + 1, dtype=torch.long, device=features.device)
    crow[1:] = torch.bincount(rows, minlength=n).cumsum(0)
    with warnings.catch_warnings():  # "CSR support is in beta": its matvec is all we use
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, cols, values, (n, n), check_invariants=False)


def conjugate_gradient(
    matvec, rhs: torch.Tensor, *, iterations: int, tol: float = 1e-6
) -> torch.Tensor:
    """Solve A X = rhs column by column for a symmetric positive definite A, (N, c)."""
    x = torch.zeros_like(rhs)
    r = rhs.clone()
    p = r.clone()
    rs = (r * r).sum(0)  # (c,)
    for _ in range(iterations):
        ap = matvec(p)
        step = rs / (p * ap).sum(0).clamp_min(1e-30)
        x = x + step * p
        r = r - step * ap
        rs_new = (r * r).sum(0)
        p = r + (rs_new / rs.clamp_min(1e-30)) * p
        rs = rs_new
    return x


@torch.no_grad()
def propagation_scores(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    graph_k: int = 10,
    alpha: float = 0.99,
    iterations: int = 20,
    sparse: bool = False,
) -> torch.Tensor:
    """Class scores of every row after propagating the known ``labels`` (-1: unknown),
    (N, C), non-negative; a row's class is its largest score.

    Solves (I - alpha S) F = Y (Zhou et al. 2004) by conjugate gradient, then divides
    each class's column by its total mass, so that a class with many points does not
    absorb the boundary (Iscen et al. 2019). ``sparse`` builds S as a sparse matrix
    (:func:`sparse_knn_affinity`; the same result), for a whole data set.
    """
    features = features.float()
    s = (sparse_knn_affinity if sparse else knn_affinity)(features, graph_k)
    known = labels >= 0
    y = torch.zeros(features.shape[0], num_classes, device=features.device)
    y[known] = nn.functional.one_hot(labels[known], num_classes).float()
    scores = conjugate_gradient(lambda v: v - alpha * (s @ v), y, iterations=iterations)
    scores = scores.clamp_min(0)
    return scores / scores.sum(0, keepdim=True).clamp_min(1e-12)


def propagate_labels(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    graph_k: int = 10,
    sparse: bool = False,
) -> torch.Tensor:
    """Class of every row after propagation, (N,): :func:`propagation_scores`' argmax."""
    scores = propagation_scores(features, labels, num_classes, graph_k=graph_k, sparse=sparse)
    return scores.argmax(1)


def certainty(scores: torch.Tensor) -> torch.Tensor:
    """Iscen et al.'s (2019) weight of a propagated label, 1 - H(p) / log C with p a row of
    ``scores`` (N, C) normalised to sum 1: 1 for a row whose mass is all on one class, 0
    for a uniform one."""
    p = scores / scores.sum(1, keepdim=True).clamp_min(1e-12)
    entropy = -(p * p.clamp_min(1e-12).log()).sum(1)
    return 1 - entropy / torch.log(torch.tensor(float(scores.shape[1])))


class PropagatedAssignment(nn.Module):
    """Targets of a batch's unlabeled rows by label propagation over the batch and a queue
    of recent unlabeled features; the queue is a buffer, so a checkpoint holds it."""

    def __init__(
        self, num_classes: int, feature_size: int, *, memory: int = 1000, graph_k: int = 10
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.graph_k = graph_k
        self.register_buffer("queue", torch.zeros(memory, feature_size))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))
        # The fill count as a Python int too: slicing by it reads no tensor on the step.
        self._filled = 0
        self.register_load_state_dict_post_hook(_read_fill_count)

    @torch.no_grad()
    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Classes of every row of ``features`` (B, D) (labeled rows keep theirs), and
        pushes the unlabeled rows into the queue; (B,) int64."""
        features = features.detach().float()
        batch = features.shape[0]
        stored = self._filled
        nodes = torch.cat([features, self.queue[:stored]])
        known = torch.cat([labels, labels.new_full((stored,), -1)])
        classes = propagate_labels(nodes, known, self.num_classes, graph_k=self.graph_k)
        self._push(features[labels < 0])
        return torch.where(labels >= 0, labels, classes[:batch])

    def _push(self, rows: torch.Tensor) -> None:
        memory = self.queue.shape[0]
        rows = rows[-memory:]
        self.queue.copy_(torch.cat([rows, self.queue])[:memory])
        self._filled = min(memory, self._filled + rows.shape[0])
        self.filled.fill_(self._filled)


def _read_fill_count(module: PropagatedAssignment, incompatible_keys: object) -> None:
    module._filled = int(module.filled)
