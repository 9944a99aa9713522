"""Pseudo-labels held for an epoch: label propagation over every training row, from the
features at the epoch's start (``model.loss.pseudo_labels=epoch_propagation``; not in the
paper).

With targets computed batch by batch (the paper's vote, or ``propagation``), a row's target
follows its features as they change: when training moves a style of one class toward
another class's rows, its targets move with it, L_A and L_M pull it further, and the
confusion locks in within the first labeled epoch (docs/RESULTS.md, "Freeing the locked
7s"). Here the targets of epoch e come from one propagation over the whole training set
with the weights at the start of e (as Iscen et al., 2019, "Label Propagation for Deep
Semi-supervised Learning", do), so the features chase fixed targets for an epoch and the
next epoch's targets come from the better features.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch

from gmvae.data.arrays import to_float
from gmvae.losses.propagation import propagate_labels
from gmvae.model import GMVAE


@torch.inference_mode()
def dataset_features(
    model: GMVAE,
    images: torch.Tensor,
    *,
    device: torch.device,
    batch_size: int = 1000,
    memory_format: torch.memory_format = torch.contiguous_format,
    context: Callable[[], AbstractContextManager] = nullcontext,
) -> torch.Tensor:
    """x_hat of every image (N, D) in float32 on ``device``, the network in eval mode
    (batch norm's running statistics) and put back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        parts = []
        for i in range(0, len(images), batch_size):
            x = to_float(images[i : i + batch_size]).to(device, non_blocking=True)
            with context():
                parts.append(model.features(x.contiguous(memory_format=memory_format)).float())
        return torch.cat(parts)
    finally:
        model.train(was_training)


class EpochTargets:
    """The target of every training row for one epoch; its state goes into checkpoints, so
    that a run resumed mid-epoch trains on the targets it had."""

    def __init__(self, num_classes: int, *, graph_k: int = 10) -> None:
        self.num_classes = num_classes
        self.graph_k = graph_k
        self.epoch = -1  # the epoch the table was made for; -1: none yet
        self.table: torch.Tensor | None = None  # (N,) int64: labels kept, the rest propagated

    def refresh(self, features: torch.Tensor, labels: torch.Tensor, epoch: int) -> None:
        """Propagate ``labels`` (N,) (-1: unlabeled) over the k-NN graph of ``features``."""
        labels = labels.to(features.device)
        propagated = propagate_labels(
            features, labels, self.num_classes, graph_k=self.graph_k, sparse=True
        )
        self.table = torch.where(labels >= 0, labels, propagated)
        self.epoch = epoch

    def lookup(self, rows: torch.Tensor) -> torch.Tensor:
        """Targets of the dataset rows ``rows`` (B,), on their device."""
        if self.table is None:
            raise RuntimeError("no targets yet: refresh() comes first")
        if self.table.device != rows.device:
            self.table = self.table.to(rows.device)
        return self.table[rows]

    def state_dict(self) -> dict[str, object]:
        table = None if self.table is None else self.table.cpu()
        return {"epoch": self.epoch, "table": table}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.epoch = int(state["epoch"])  # type: ignore[arg-type]
        table = state["table"]
        self.table = None if table is None else torch.as_tensor(table, dtype=torch.long)
