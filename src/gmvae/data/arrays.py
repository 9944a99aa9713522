"""In-memory image arrays with validation; batches are gathered by index, without workers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gmvae.errors import DataError


@dataclass(frozen=True)
class ImageArrays:
    """Images (N, C, H, W) as uint8 (0..255) or float32 in [0, 1], labels (N,) int64.

    A label of -1 marks an unlabeled image (the ``sklearn.semi_supervised`` convention).
    """

    images: torch.Tensor
    labels: torch.Tensor
    source: str = "arrays"

    def __post_init__(self) -> None:
        validate_images(self.images, self.source)
        if self.labels.ndim != 1 or len(self.labels) != len(self.images):
            raise DataError(
                f"{self.source}: {len(self.images)} images but labels of shape "
                f"{tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, indices: np.ndarray | torch.Tensor) -> ImageArrays:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return ImageArrays(self.images[idx], self.labels[idx], self.source)


def validate_images(images: torch.Tensor, source: str) -> None:
    if images.ndim != 4:
        raise DataError(f"{source}: images must have shape (N, C, H, W), got {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return
    if images.dtype != torch.float32:
        raise DataError(f"{source}: images must be uint8 or float32, got {images.dtype}")
    if not torch.isfinite(images).all():
        raise DataError(f"{source}: images contain NaN or Inf values")
    if len(images) and (images.min() < 0 or images.max() > 1):
        raise DataError(f"{source}: float images must lie in [0, 1]")


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 -> float32 in [0, 1]; float images pass through."""
    if images.dtype == torch.uint8:
        return images.float().div_(255.0)
    return images


class IndexedImages(torch.utils.data.Dataset):
    """A dataset whose ``__getitems__`` gathers a whole batch with one index operation.

    ``labels`` is what the model may see: -1 for rows whose label is hidden. With
    ``with_rows`` a batch is ``(x, labels, rows)``, ``rows`` the dataset indices it holds
    (targets kept per row, such as the epoch's propagated labels, are looked up by them).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, *, with_rows: bool = False):
        self.images = images
        self.labels = labels
        self.with_rows = with_rows

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        if self.with_rows:
            return to_float(self.images[index]), self.labels[index], torch.tensor(index)
        return to_float(self.images[index]), self.labels[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, ...]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        if self.with_rows:
            return to_float(self.images[idx]), self.labels[idx], idx
        return to_float(self.images[idx]), self.labels[idx]


def keep_batch(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """collate_fn for :class:`IndexedImages`: the batch is already stacked."""
    return batch
