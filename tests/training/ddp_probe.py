"""A Lightning callback for the DDP tests: records which rows each rank really trained and
evaluated on, and checks every batch against the dataset rows its sampler named.

Used as ``gmvae fit ... --trainer.callbacks+=tests.training.ddp_probe.RecordRows``; at the
end of testing each rank writes ``probe-rank<R>.json`` into the run directory.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import torch

from gmvae.data.arrays import to_float


class RecordRows(L.Callback):
    def __init__(self) -> None:
        self.train: dict[int, dict[str, list[int]]] = {}
        self.val_rows: list[int] = []
        self.test_rows: list[int] = []
        self.mismatches = 0  # batches whose content is not the rows their sampler named
        self.batches = 0
        self.noise_seed: int | None = None
        self._plan: list[list[int]] = []

    def _check(self, batch, plan: list[int], images: torch.Tensor, labels: torch.Tensor) -> None:
        x, y, *rows = batch  # training batches carry their row indices too
        idx = torch.tensor(plan)
        self.batches += 1
        if not (
            torch.equal(x, to_float(images[idx]))
            and torch.equal(y, labels[idx])
            and all(torch.equal(r, idx) for r in rows)
        ):
            self.mismatches += 1

    # training: the batch sampler after Lightning's set_epoch, replayed (it is deterministic)
    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._plan = list(trainer.train_dataloader.batch_sampler)
        self.train[trainer.current_epoch] = {"unlabeled": [], "labeled": []}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.noise_seed is None:
            self.noise_seed = torch.initial_seed()
        dm = trainer.datamodule
        plan = self._plan[batch_idx]
        # what the model may see: true labels for the labeled subset, -1 elsewhere
        observed = torch.full((len(dm.train_set),), -1, dtype=torch.long)
        observed[dm.labeled_index] = dm.train_set.labels[dm.labeled_index]
        self._check(batch, plan, dm.train_set.images, observed)
        record = self.train[trainer.current_epoch]
        for i, label in zip(plan, batch[1].tolist(), strict=True):
            record["unlabeled" if label < 0 else "labeled"].append(i)

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._plan = list(trainer.val_dataloaders.batch_sampler)
        self.val_rows = []

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        dm = trainer.datamodule
        self._check(batch, self._plan[batch_idx], dm.val_set.images, dm.val_set.labels)
        self.val_rows += self._plan[batch_idx]

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self._plan = list(trainer.test_dataloaders.batch_sampler)
        self.test_rows = []

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        dm = trainer.datamodule
        self._check(batch, self._plan[batch_idx], dm.test_set.images, dm.test_set.labels)
        self.test_rows += self._plan[batch_idx]

    def on_test_end(self, trainer, pl_module) -> None:
        record = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "train": self.train,
            "val_rows": self.val_rows,
            "test_rows": self.test_rows,
            "batches": self.batches,
            "mismatches": self.mismatches,
            "noise_seed": self.noise_seed,
        }
        path = Path(trainer.default_root_dir) / f"probe-rank{trainer.global_rank}.json"
        path.write_text(json.dumps(record))
        trainer.strategy.barrier("probe written")
