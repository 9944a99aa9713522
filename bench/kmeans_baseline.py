"""The clustering baseline every GMVAE clustering figure is read against: scikit-learn's
k-means on a PCA of the training images, scored on the official test set like gmvae's
clustering runs (ACC: best one-to-one cluster-to-class matching; NMI: arithmetic).

    python bench/kmeans_baseline.py --dataset mnist --data-dir DATA --seeds 3

Fitted on the seed's 80 % training split, the images the clustering configs train on
(the split is stratified, as gmvae's datamodule draws it), with k = the number of classes.
``gmvae reproduce`` writes the same figure beside every clustering run it finishes.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from gmvae.reproduce.baseline import COMPONENTS, kmeans_on_split


def spread(values: tuple[float, ...]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    args = parser.parse_args(argv)
    rows = []
    for seed in range(args.seeds):
        result = kmeans_on_split(args.dataset, args.data_dir, args.val_fraction, seed)
        acc, nmi = result["test_cluster_accuracy"], result["test_nmi"]
        rows.append((acc, nmi))
        print(
            f"seed {seed}: ACC {100 * acc:.2f} %, NMI {100 * nmi:.2f} %, {result['seconds']:.1f} s"
        )
    accs, nmis = zip(*rows, strict=True)
    print(
        f"k-means on PCA-{COMPONENTS}, {args.dataset}, {args.seeds} seeds: "
        f"ACC {100 * statistics.mean(accs):.2f} ± {100 * spread(accs):.2f} %, "
        f"NMI {100 * statistics.mean(nmis):.2f} ± {100 * spread(nmis):.2f} %"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
