"""Variants of the suggestion rule, compared without training: 1-NN accuracy of their picks.

    python bench/suggest_rules.py --dataset digits --models runs/suggest-bench/seed*/suggest-10/model.safetensors

For each model (one per seed, trained by ``gmvae suggest``; seed k is the k-th file),
each variant picks ``--budgets`` images of the train part of that seed's split, and
their true labels label every other image of it by its nearest pick in the model's
(L2-normalised) features. The accuracy of that 1-NN labeling, and the classes the picks
cover, rank the variants cheaply; the chosen one is then measured by training
(bench/suggest_vs_random.py). Variants:

- ``typical``: the rule of gmvae.data.suggest (k-means on normalised x_hat, the most typical
  image of each cluster, uncovered clusters first);
- ``typical-raw``: the same on x_hat as it is;
- ``centre``: k-means on normalised x_hat, the image nearest each centroid;
- ``typical-pixels``: the rule on the normalised pixels instead of the features;
- ``random``: a uniform draw.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
from sklearn.neighbors import KNeighborsClassifier

from gmvae.data.arrays import to_float
from gmvae.data.registry import load_split
from gmvae.data.split import train_val_split
from gmvae.data.suggest import cluster, suggest
from gmvae.io.model_file import load_model

VARIANTS = ("typical", "typical-raw", "centre", "typical-pixels", "random")


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def centre_picks(features: np.ndarray, budget: int, seed: int) -> np.ndarray:
    """The image nearest each k-means centroid (k = budget)."""
    x = unit(features)
    labels = cluster(x, budget, seed)
    picks = []
    for c in range(budget):
        members = np.flatnonzero(labels == c)
        centre = x[members].mean(axis=0)
        picks.append(members[np.argmin(np.linalg.norm(x[members] - centre, axis=1))])
    return np.array(picks)


def picks_of(variant: str, features: np.ndarray, pixels: np.ndarray, budget: int, seed: int):
    if variant == "typical":
        return suggest(features, budget, seed=seed).indices
    if variant == "typical-raw":
        return suggest(features, budget, seed=seed, normalize=False).indices
    if variant == "centre":
        return centre_picks(features, budget, seed)
    if variant == "typical-pixels":
        return suggest(pixels, budget, seed=seed).indices
    return np.random.default_rng([seed, budget]).choice(len(features), budget, replace=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-dir")
    parser.add_argument("--models", nargs="+", required=True, help="one per seed, in order")
    parser.add_argument("--budgets", type=int, nargs="+", default=[10, 20, 50, 100])
    parser.add_argument("--val-fraction", type=float, default=0.2)
    args = parser.parse_args(argv)
    full = load_split(args.dataset, "train", data_dir=args.data_dir)
    results: dict[tuple[str, int], list[tuple[float, int]]] = {}
    for seed, path in enumerate(args.models):
        rows, _ = train_val_split(full.labels.numpy(), args.val_fraction, seed)
        images, truth = full.images[rows], full.labels.numpy()[rows]
        model, _ = load_model(path)
        with torch.inference_mode():
            features = model.features(to_float(images)).numpy()
        pixels = images.flatten(1).float().numpy()
        for budget in args.budgets:
            for variant in VARIANTS:
                picks = picks_of(variant, features, pixels, budget, seed)
                knn = KNeighborsClassifier(1).fit(unit(features)[picks], truth[picks])
                accuracy = float((knn.predict(unit(features)) == truth).mean())
                results.setdefault((variant, budget), []).append((accuracy, len(set(truth[picks]))))
    print(f"1-NN accuracy (%) of the picks' labels on the train part, {len(args.models)} seeds")
    print("| labels | " + " | ".join(VARIANTS) + " |")
    print("|---" * (len(VARIANTS) + 1) + "|")
    for budget in args.budgets:
        cells = []
        for variant in VARIANTS:
            accs, covers = zip(*results[(variant, budget)], strict=True)
            cells.append(
                f"{100 * statistics.mean(accs):.1f} ({statistics.mean(covers):.1f} classes)"
            )
        print(f"| {budget} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
