"""The clustering baseline every GMVAE clustering figure is read against: scikit-learn's
k-means on a PCA of the training images, fitted on the run's own training split and
scored on the official test set as the run is (ACC: best one-to-one cluster-to-class
matching; NMI: arithmetic normalisation).

The runner writes it beside each finished clustering run (``kmeans.json``), so that
every clustering row of the results table shows how much the GMVAE adds over it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from gmvae.data.registry import load_split
from gmvae.data.split import train_val_split
from gmvae.errors import DataError
from gmvae.io.atomic import atomic_write_json
from gmvae.training.clustering import cluster_accuracy, normalized_mutual_info

BASELINE = "kmeans.json"
COMPONENTS = 50


def kmeans_scores(
    train: np.ndarray,
    test: np.ndarray,
    test_labels: np.ndarray,
    k: int,
    *,
    components: int = COMPONENTS,
    seed: int = 0,
) -> dict[str, float]:
    """ACC, NMI (fractions) and seconds of k-means(k) on a PCA fitted to ``train`` (flat rows)."""
    start = time.perf_counter()
    pca = PCA(min(components, *train.shape), random_state=seed).fit(train)
    kmeans = KMeans(k, n_init=10, random_state=seed).fit(pca.transform(train))
    clusters = kmeans.predict(pca.transform(test))
    return {
        "test_cluster_accuracy": cluster_accuracy(test_labels, clusters),
        "test_nmi": normalized_mutual_info(test_labels, clusters),
        "seconds": time.perf_counter() - start,
    }


def kmeans_on_split(
    dataset: str, data_dir: str | None, val_fraction: float, seed: int
) -> dict[str, Any]:
    """The baseline on the images a run with this dataset, split and seed trains on."""
    train, test = (load_split(dataset, s, data_dir=data_dir) for s in ("train", "test"))
    train_idx, _ = train_val_split(train.labels.numpy(), val_fraction, seed)
    scores = kmeans_scores(  # the splits are uint8: scaled to [0, 1] as the model sees them
        train.images[train_idx].flatten(1).numpy() / 255.0,
        test.images.flatten(1).numpy() / 255.0,
        test.labels.numpy(),
        int(train.labels.max()) + 1,
        seed=seed,
    )
    return {"method": f"k-means on PCA-{COMPONENTS}", "dataset": dataset, "seed": seed, **scores}


def write_run_baseline(run: Path) -> dict[str, Any]:
    """Compute the baseline for the finished run in ``run`` (read from its config.yaml)."""
    try:
        config = yaml.safe_load((run / "config.yaml").read_text())
        data = config["data"]
        result = kmeans_on_split(
            str(data["dataset"]),
            data.get("data_dir"),
            float(data.get("val_fraction", 0.2)),
            int(config["seed_everything"]),
        )
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise DataError(
            f"{run / 'config.yaml'}: cannot set up the k-means baseline: {exc}"
        ) from None
    atomic_write_json(run / BASELINE, result)
    return result
