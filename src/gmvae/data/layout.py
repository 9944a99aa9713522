"""User arrays (N, H, W), (N, H, W, C), (N, C, H, W) or (N, D) as model images (N, C, H, W)."""

from __future__ import annotations

import math

import numpy as np
import torch

from gmvae.errors import DataError


def to_images(
    X: object, image_shape: tuple[int, int, int] | None = None, *, source: str = "X"
) -> torch.Tensor:
    """(N, C, H, W) uint8 (0..255, kept as is) or float32 in [0, 1].

    Without ``image_shape`` the layout follows the number of axes: (N, H, W) is grey,
    (N, H, W, C) channels-last, (N, D) flat (an MLP then models it). With a model's
    ``image_shape`` (C, H, W), any of those layouts that holds that image is accepted,
    channels-first included.
    """
    try:
        array = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{source}: not an array: {exc}") from None
    if array.dtype.kind not in "uif" and array.dtype != bool:
        raise DataError(f"{source}: expected numbers, got dtype {array.dtype}")
    if array.ndim not in (2, 3, 4) or not len(array):
        raise DataError(
            f"{source}: expected a non-empty array of shape (N, H, W), (N, H, W, C) or (N, D), "
            f"got {array.shape}"
        )
    n = len(array)
    if array.ndim == 2:
        shape = image_shape if image_shape and math.prod(image_shape) == array.shape[1] else None
        images = array.reshape(n, *(shape or (1, 1, array.shape[1])))
    elif array.ndim == 3:
        images = array[:, None]
    elif image_shape is not None and tuple(array.shape[1:]) == tuple(image_shape):
        images = array  # already channels-first
    else:
        images = array.transpose(0, 3, 1, 2)
    if image_shape is not None and tuple(images.shape[1:]) != tuple(image_shape):
        c, h, w = image_shape
        raise DataError(
            f"{source}: rows of shape {array.shape[1:]} do not fit the model's images "
            f"(C, H, W) = {tuple(image_shape)}; expected ({h}, {w}, {c}), ({c}, {h}, {w})"
            + (f", ({h}, {w})" if c == 1 else "")
            + f" or ({c * h * w},)"
        )
    if images.dtype == np.uint8:
        images = np.ascontiguousarray(images)
        # torch wants writable memory (a read-only memory map is copied, batch by batch).
        return torch.from_numpy(images if images.flags.writeable else images.copy())
    images = np.ascontiguousarray(images, dtype=np.float32)
    if not np.isfinite(images).all():
        raise DataError(f"{source}: contains NaN or Inf values")
    low, high = float(images.min()), float(images.max())
    if low < 0 or high > 1:
        raise DataError(
            f"{source}: values lie in [{low:g}, {high:g}]; give uint8 (0..255) or floats scaled "
            "to [0, 1] (e.g. X / X.max())"
        )
    return torch.from_numpy(images)


def from_images(images: torch.Tensor, row_shape: tuple[int, ...]) -> np.ndarray:
    """(N, C, H, W) back to the layout of rows shaped ``row_shape`` (H, W), (H, W, C) or (D,)."""
    array = images.detach().cpu().numpy()
    if len(row_shape) == 3:
        array = np.ascontiguousarray(array.transpose(0, 2, 3, 1))  # channels-last
    return array.reshape(len(array), *row_shape)
