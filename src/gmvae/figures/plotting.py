"""Figures from arrays: image grids, the t-SNE scatter, training curves.

Every function takes plain arrays and returns a matplotlib ``Figure`` whose size is
fixed by its arguments (no tight bounding box), so ``savefig(dpi=d)`` writes a PNG of
a predictable pixel size. Nothing here knows about the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure  # built without pyplot: no display or backend needed
from matplotlib.ticker import MaxNLocator

LABEL_WIDTH = 1.3  # inches left of an image grid for the row labels
TITLE_HEIGHT = 0.4  # inches above an image grid for its title


def grid_figsize(
    rows: int, cols: int, cell: float = 0.5, *, title: bool = True
) -> tuple[float, float]:
    """(width, height) in inches of :func:`image_grid` for ``rows`` x ``cols`` images."""
    return LABEL_WIDTH + cols * cell, rows * cell + (TITLE_HEIGHT if title else 0.0)


def _tile(images: np.ndarray, gap: int) -> np.ndarray:
    """(R, N, C, H, W) in [0, 1] -> one (R*(H+gap)-gap, N*(W+gap)-gap, C) mosaic, gaps white."""
    rows, cols, channels, h, w = images.shape
    out = np.ones((rows * (h + gap) - gap, cols * (w + gap) - gap, channels), dtype=np.float32)
    for r in range(rows):
        for c in range(cols):
            top, left = r * (h + gap), c * (w + gap)
            out[top : top + h, left : left + w] = images[r, c].transpose(1, 2, 0)
    return out


def image_grid(
    images: np.ndarray,
    row_labels: Sequence[str],
    *,
    title: str | None = None,
    cell: float = 0.5,
) -> Figure:
    """A grid of images, one labelled row per entry of ``row_labels``.

    Args:
        images: (R, N, C, H, W) with C = 1 (grey) or 3 (RGB), values in [0, 1].
        row_labels: R labels, written left of their rows.
        title: text above the grid (None: no title band).
        cell: inches per image; the figure is :func:`grid_figsize` inches.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 5 or images.shape[2] not in (1, 3):
        raise ValueError(
            f"images must have shape (R, N, C, H, W) with C 1 or 3, got {images.shape}"
        )
    rows, cols = images.shape[:2]
    if len(row_labels) != rows:
        raise ValueError(f"{len(row_labels)} row labels for {rows} rows")
    width, height = grid_figsize(rows, cols, cell, title=title is not None)
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((LABEL_WIDTH / width, 0.0, cols * cell / width, rows * cell / height))
    gap = max(1, images.shape[3] // 14)
    mosaic = np.clip(_tile(images, gap), 0.0, 1.0)
    if mosaic.shape[2] == 1:
        ax.imshow(mosaic[..., 0], cmap="gray", vmin=0.0, vmax=1.0, aspect="auto")
    else:
        ax.imshow(mosaic, aspect="auto")
    h = images.shape[3]
    ax.set_yticks([r * (h + gap) + (h - 1) / 2 for r in range(rows)], list(row_labels))
    ax.set_xticks([])
    ax.tick_params(length=0, labelsize=9)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title is not None:
        fig.text(0.5, 1.0 - 0.5 * TITLE_HEIGHT / height, title, ha="center", va="center")
    return fig


def embedding_scatter(
    points: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    title: str | None = None,
    figsize: tuple[float, float] = (8.0, 6.5),
) -> Figure:
    """A 2-D scatter of ``points`` (N, 2), one colour per class in ``labels`` (N,)."""
    points, labels = np.asarray(points), np.asarray(labels)
    if points.ndim != 2 or points.shape[1] != 2 or labels.shape != (len(points),):
        raise ValueError(
            f"points must be (N, 2) and labels (N,), got {points.shape}, {labels.shape}"
        )
    fig = Figure(figsize=figsize)
    ax = fig.add_axes((0.06, 0.06, 0.68, 0.86))
    cmap = matplotlib.colormaps["tab10" if len(class_names) <= 10 else "tab20"]
    for k, name in enumerate(class_names):
        members = labels == k
        ax.scatter(
            points[members, 0],
            points[members, 1],
            s=3,
            color=cmap(k % cmap.N),
            label=name,
            rasterized=True,
        )
    ax.set_xticks([])
    ax.set_yticks([])
    legend = ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), markerscale=4, frameon=False)
    legend.set_title("true class")
    if title is not None:
        ax.set_title(title)
    return fig


def training_curves(
    epochs: np.ndarray,
    series: Mapping[str, np.ndarray],
    *,
    title: str | None = None,
    ncols: int = 3,
    panel: tuple[float, float] = (4.0, 2.8),
) -> Figure:
    """One panel per series (its own scale), value against epoch; NaN marks a missing epoch."""
    if not series:
        raise ValueError("no series to plot")
    names = list(series)
    ncols = min(ncols, len(names))
    nrows = -(-len(names) // ncols)
    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        values = np.asarray(series[name], dtype=float)
        ax.plot(epochs, values, marker="o", markersize=3)
        finite = values[np.isfinite(values)]
        last = f" (last {finite[-1]:.4g})" if len(finite) else ""
        ax.set_title(name + last, fontsize=10)
        ax.set_xlabel("epoch (0 = the first)")
        if len(epochs) <= 10:
            ax.set_xticks(epochs)
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    if title is not None:
        fig.suptitle(title)
    return fig
