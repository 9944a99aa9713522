"""The clustering baseline every GMVAE clustering figure is read against: scikit-learn's
k-means on a PCA of the training images, scored on the official test set like gmvae's
clustering runs (ACC: best one-to-one cluster-to-class matching; NMI: arithmetic).

    python bench/kmeans_baseline.py --dataset mnist --data-dir DATA --seeds 3

Fitted on the seed's 80 % training split, the images the clustering configs train on
(the split is stratified, as gmvae's datamodule draws it), with k = the number of classes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from gmvae.data.registry import load_split
from gmvae.data.split import train_val_split
from gmvae.training.clustering import cluster_accuracy, normalized_mutual_info


def kmeans_scores(
    train: np.ndarray,
    test: np.ndarray,
    test_labels: np.ndarray,
    k: int,
    *,
    components: int,
    seed: int,
) -> tuple[float, float, float]:
    """(ACC, NMI, seconds) of k-means on a PCA fitted to ``train`` (flat float rows)."""
    start = time.perf_counter()
    pca = PCA(components, random_state=seed).fit(train)
    kmeans = KMeans(k, n_init=10, random_state=seed).fit(pca.transform(train))
    clusters = kmeans.predict(pca.transform(test))
    seconds = time.perf_counter() - start
    return (
        cluster_accuracy(test_labels, clusters),
        normalized_mutual_info(test_labels, clusters),
        seconds,
    )


def spread(values: tuple[float, ...]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--components", type=int, default=50)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    args = parser.parse_args(argv)
    train, test = (load_split(args.dataset, s, data_dir=args.data_dir) for s in ("train", "test"))
    k = int(train.labels.max()) + 1
    flat_test = test.images.flatten(1).numpy() / 255.0
    rows = []
    for seed in range(args.seeds):
        train_idx, _ = train_val_split(train.labels.numpy(), args.val_fraction, seed)
        flat_train = train.images[train_idx].flatten(1).numpy() / 255.0
        acc, nmi, seconds = kmeans_scores(
            flat_train, flat_test, test.labels.numpy(), k, components=args.components, seed=seed
        )
        rows.append((acc, nmi))
        print(f"seed {seed}: ACC {100 * acc:.2f} %, NMI {100 * nmi:.2f} %, {seconds:.1f} s")
    accs, nmis = zip(*rows, strict=True)
    print(
        f"k-means({k}) on PCA-{args.components}, {args.dataset}, {args.seeds} seeds: "
        f"ACC {100 * statistics.mean(accs):.2f} ± {100 * spread(accs):.2f} %, "
        f"NMI {100 * statistics.mean(nmis):.2f} ± {100 * spread(nmis):.2f} %"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
