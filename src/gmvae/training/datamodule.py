"""The DataModule: official split -> seeded train/val -> labeled subset -> half-labeled batches."""

from __future__ import annotations

import os

import lightning as L
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

from gmvae.data.arrays import ImageArrays, IndexedImages, keep_batch
from gmvae.data.registry import get_spec, load_split
from gmvae.data.sampler import SemiSupervisedBatchSampler
from gmvae.data.split import balanced_labeled_subset, train_val_split
from gmvae.errors import ConfigError


class GMVAEDataModule(L.LightningDataModule):
    """Paper protocol (5.1): 80/20 stratified train/val split of the official train set,
    ``num_labeled`` labeled examples (equal per class) from the train part, both fixed by
    the seed; the test set is read only for testing.

    Args:
        dataset: mnist, fashion-mnist, svhn or digits (offline demo).
        data_dir: a folder holding ``<dataset>/`` with the standard files.
        download: fetch missing files from the official mirrors (checksums verified).
        num_labeled: labeled examples, a multiple of the number of classes (0: clustering).
        unlabeled_batch_size: unlabeled rows per batch (per rank under DDP).
        labeled_batch_size: labeled rows added to every batch (per rank under DDP).
        eval_batch_size: batch size for validation, testing and prediction.
        val_fraction: fraction of the official train set kept for validation.
        seed: seed of the split and labeled subset; None takes ``seed_everything``'s.
    """

    def __init__(
        self,
        dataset: str = "mnist",
        data_dir: str | None = None,
        download: bool = True,
        num_labeled: int = 100,
        unlabeled_batch_size: int = 100,
        labeled_batch_size: int = 100,
        eval_batch_size: int = 1000,
        val_fraction: float = 0.2,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.spec = get_spec(dataset)
        if num_labeled == 0 and labeled_batch_size > 0:
            raise ConfigError("labeled_batch_size must be 0 when num_labeled is 0 (clustering)")
        if num_labeled > 0 and labeled_batch_size == 0:
            raise ConfigError(f"num_labeled={num_labeled} but labeled_batch_size is 0")
        if eval_batch_size < 1:
            raise ConfigError(f"eval_batch_size={eval_batch_size} must be >= 1")
        self.dataset = dataset
        self.data_dir = data_dir
        self.download = download
        self.num_labeled = num_labeled
        self.unlabeled_batch_size = unlabeled_batch_size
        self.labeled_batch_size = labeled_batch_size
        self.eval_batch_size = eval_batch_size
        self.val_fraction = val_fraction
        self.seed = seed
        self.train_set: ImageArrays | None = None
        self.val_set: ImageArrays | None = None
        self.test_set: ImageArrays | None = None
        self.labeled_index: np.ndarray | None = None  # positions in train_set

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.spec.image_shape

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.class_names

    def resolved_seed(self) -> int:
        if self.seed is not None:
            return self.seed
        return int(os.environ.get("PL_GLOBAL_SEED", 0))

    def _load(self, split: str) -> ImageArrays:
        arrays = load_split(self.dataset, split, data_dir=self.data_dir, download=self.download)
        if arrays.image_shape != self.image_shape:
            raise ConfigError(
                f"{arrays.source}: images of shape {arrays.image_shape}, expected {self.image_shape}"
            )
        return arrays

    def setup(self, stage: str) -> None:
        if stage in ("fit", "validate") and self.train_set is None:
            full = self._load("train")
            seed = self.resolved_seed()
            train_idx, val_idx = train_val_split(full.labels.numpy(), self.val_fraction, seed)
            self.train_set, self.val_set = full.subset(train_idx), full.subset(val_idx)
            self.labeled_index = balanced_labeled_subset(
                self.train_set.labels.numpy(), self.num_labeled, self.num_classes, seed
            )
        if stage in ("test", "predict") and self.test_set is None:
            self.test_set = self._load("test")

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None and self.labeled_index is not None
        n = len(self.train_set)
        is_labeled = np.zeros(n, dtype=bool)
        is_labeled[self.labeled_index] = True
        observed = torch.where(
            torch.from_numpy(is_labeled), self.train_set.labels, torch.full((n,), -1)
        )
        rank, world = self._rank()
        sampler = SemiSupervisedBatchSampler(
            np.flatnonzero(~is_labeled),
            self.labeled_index,
            unlabeled_batch_size=self.unlabeled_batch_size,
            labeled_batch_size=self.labeled_batch_size,
            seed=self.resolved_seed(),
            rank=rank,
            world_size=world,
        )
        return DataLoader(
            IndexedImages(self.train_set.images, observed),
            batch_sampler=sampler,
            collate_fn=keep_batch,
            pin_memory=torch.cuda.is_available(),
        )

    def _eval_loader(self, arrays: ImageArrays | None, *, hide_labels: bool = False) -> DataLoader:
        assert arrays is not None
        labels = torch.full_like(arrays.labels, -1) if hide_labels else arrays.labels
        return DataLoader(
            IndexedImages(arrays.images, labels),
            batch_sampler=BatchSampler(
                SequentialSampler(range(len(arrays))), self.eval_batch_size, False
            ),
            collate_fn=keep_batch,
            pin_memory=torch.cuda.is_available(),
        )

    def val_dataloader(self) -> DataLoader:
        # A run without labels (clustering, paper 5.3.1) reads none in validation either:
        # its labels arrive as -1, so model selection can only use the label-free val/loss.
        return self._eval_loader(self.val_set, hide_labels=self.num_labeled == 0)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set)

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set)
