"""The data behind the paper's figures, computed from a trained model (arrays in, arrays out).

Fig. 3 (images generated per category), Fig. 4 (t-SNE of the test-set features
x_hat), reconstructions, and per-epoch training curves read from a run's
``metrics.csv``. :mod:`gmvae.figures.plotting` draws them; the figure
commands in this package tie the two together and write the files.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from sklearn.manifold import TSNE

from gmvae.data.arrays import to_float
from gmvae.errors import DataError
from gmvae.model.gmvae import GMVAE


@contextmanager
def _eval_mode(model: GMVAE) -> Iterator[GMVAE]:
    """Eval mode (batch-norm running statistics, deterministic y and z), restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield model
    finally:
        model.train(was_training)


def generated_grid(model: GMVAE, per_class: int, *, seed: int = 0) -> np.ndarray:
    """``per_class`` images per category, z ~ p(z|y) decoded (paper Fig. 3); (c, n, C, H, W)."""
    if per_class < 1:
        raise ValueError(f"per_class={per_class} must be >= 1")
    generator = torch.Generator(device=model.p_z_mean.weight.device).manual_seed(seed)
    with _eval_mode(model):
        rows = [model.sample(k, per_class, generator=generator) for k in range(model.num_classes)]
    return torch.stack(rows).cpu().numpy()


def _batched(
    model: GMVAE, fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch_size: int
) -> np.ndarray:
    device = model.p_z_mean.weight.device
    with _eval_mode(model):
        parts = [
            fn(to_float(images[i : i + batch_size]).to(device)).cpu()
            for i in range(0, len(images), batch_size)
        ]
    return torch.cat(parts).numpy()


def reconstructions(model: GMVAE, images: torch.Tensor, *, batch_size: int = 500) -> np.ndarray:
    """sigmoid(p(x|z)) at the posterior mean z (eval mode, deterministic); (N, C, H, W)."""
    return _batched(model, lambda x: model(x).reconstruction, images, batch_size)


def encoded_features(model: GMVAE, images: torch.Tensor, *, batch_size: int = 500) -> np.ndarray:
    """The deterministic features x_hat = g(x) that the paper's Fig. 4 embeds; (N, fsz)."""
    return _batched(model, model.features, images, batch_size)


def subsample(num_rows: int, max_rows: int | None, *, seed: int = 0) -> np.ndarray:
    """Sorted positions of at most ``max_rows`` of ``num_rows`` rows, drawn without replacement."""
    if max_rows is None or max_rows >= num_rows:
        return np.arange(num_rows)
    if max_rows < 1:
        raise ValueError(f"max_rows={max_rows} must be >= 1")
    return np.sort(np.random.default_rng(seed).choice(num_rows, size=max_rows, replace=False))


def tsne_2d(features: np.ndarray, *, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """scikit-learn's Barnes-Hut t-SNE to 2-D (PCA initialisation); (N, 2)."""
    features = np.asarray(features, dtype=np.float32)
    perplexity = min(perplexity, (len(features) - 1) / 3)  # t-SNE needs N > 3 * perplexity
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return tsne.fit_transform(features)


def epoch_metrics(csv_path: str | os.PathLike, prefixes: tuple[str, ...] = ("train/", "val/")):
    """Per-epoch values of every column of a run's ``metrics.csv`` starting with ``prefixes``.

    Lightning's CSVLogger writes one epoch's train and validation values on separate
    lines; they are merged by epoch (the last non-empty value wins). Returns
    ``(epochs, {column: values})`` with NaN where an epoch has no value.
    """
    path = Path(csv_path)
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise DataError(f"{path}: missing (is this a gmvae run directory?)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable metrics file: {exc}") from None
    if not rows or "epoch" not in rows[0]:
        raise DataError(f"{path}: no 'epoch' column; not a Lightning metrics.csv")
    columns = sorted(c for c in rows[0] if c.startswith(prefixes))
    merged: dict[int, dict[str, float]] = {}
    for row in rows:
        if not row.get("epoch"):
            continue
        values = {c: float(row[c]) for c in columns if row.get(c)}
        if values:  # lines of other stages (the test after fit) have none
            merged.setdefault(int(float(row["epoch"])), {}).update(values)
    epochs = np.array(sorted(merged), dtype=int)
    series = {
        c: np.array([merged[e].get(c, math.nan) for e in epochs], dtype=float) for c in columns
    }
    series = {c: v for c, v in series.items() if not np.isnan(v).all()}
    if not series:
        raise DataError(f"{path}: no train/ or val/ values to plot")
    return epochs, series
