"""Data sources, the seeded train/val split, the balanced labeled subset and the batch sampler."""

from gmvae.data.arrays import ImageArrays
from gmvae.data.registry import DATASETS, DatasetSpec, get_spec, load_split
from gmvae.data.sampler import SemiSupervisedBatchSampler
from gmvae.data.split import balanced_labeled_subset, train_val_split

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "ImageArrays",
    "SemiSupervisedBatchSampler",
    "balanced_labeled_subset",
    "get_spec",
    "load_split",
    "train_val_split",
]
