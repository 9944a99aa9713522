"""The contact sheet of ``gmvae suggest``: numbered thumbnails a labels list refers to.

Built without pyplot (no display or backend needed), at a size fixed by its arguments.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

TITLE_HEIGHT = 0.4  # inches above the sheet for its title


def numbered_sheet(
    images: np.ndarray,
    *,
    columns: int = 10,
    cell: float = 1.0,
    title: str | None = None,
) -> Figure:
    """A contact sheet: image k (from 1) above its number, so a list can refer to it.

    Args:
        images: (N, C, H, W) with C = 1 (grey) or 3 (RGB), values in [0, 1].
        columns: images per row.
        cell: inches per image, its number included.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[1] not in (1, 3) or not len(images):
        raise ValueError(f"images must have shape (N, C, H, W) with C 1 or 3, got {images.shape}")
    n = len(images)
    cols = min(columns, n)
    rows = -(-n // cols)
    top = TITLE_HEIGHT if title is not None else 0.0
    width, height = cols * cell, rows * cell + top
    fig = Figure(figsize=(width, height))
    label = 0.22 * cell  # inches of each cell kept for the number
    for k in range(n):
        r, c = divmod(k, cols)
        bottom = height - top - (r + 1) * cell
        ax = fig.add_axes(
            (
                (c * cell + 0.06 * cell) / width,
                bottom / height,
                0.88 * cell / width,
                (cell - label) / height,
            )
        )
        image = np.clip(images[k].transpose(1, 2, 0), 0.0, 1.0)
        if image.shape[2] == 1:
            ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0, aspect="auto")
        else:
            ax.imshow(image, aspect="auto")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(str(k + 1), fontsize=9, pad=2)
    if title is not None:
        fig.text(0.5, 1.0 - 0.5 * top / height, title, ha="center", va="center")
    return fig
