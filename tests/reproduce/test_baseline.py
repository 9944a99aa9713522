"""The k-means baseline beside clustering runs: computed on the run's own split, shown
in the results table beside the run's scores."""

import json

import pytest

from gmvae.errors import DataError
from gmvae.reproduce.baseline import BASELINE, kmeans_on_split, write_run_baseline
from gmvae.reproduce.results import render, scan


def test_kmeans_on_the_digits_clusters_far_above_chance():
    result = kmeans_on_split("digits", None, 0.2, seed=0)
    assert result["test_cluster_accuracy"] > 0.6 and result["test_nmi"] > 0.6  # chance: 0.1, 0
    assert result == {**result, "method": "k-means on PCA-50", "dataset": "digits", "seed": 0}
    again = kmeans_on_split("digits", None, 0.2, seed=0)
    assert again["test_cluster_accuracy"] == result["test_cluster_accuracy"]  # seeded


def test_the_baseline_reads_the_runs_config_and_lands_beside_it(tmp_path):
    (tmp_path / "config.yaml").write_text(
        "seed_everything: 1\ndata:\n  dataset: digits\n  data_dir: null\n  val_fraction: 0.3\n"
    )
    result = write_run_baseline(tmp_path)
    assert json.loads((tmp_path / BASELINE).read_text()) == result
    assert result["seed"] == 1
    (tmp_path / "config.yaml").write_text("data: {}\n")
    with pytest.raises(DataError, match="cannot set up the k-means baseline"):
        write_run_baseline(tmp_path)


def test_clustering_rows_show_the_baseline_and_others_a_dash(tmp_path):
    for seed, (acc, base) in enumerate([(0.80, 0.55), (0.70, 0.53)]):
        run = tmp_path / "mnist-cluster" / "epochs-3" / f"seed-{seed}"
        run.mkdir(parents=True)
        metrics = {"test_cluster_accuracy": acc, "test_nmi": acc - 0.1, "epochs": 3}
        (run / "metrics.json").write_text(json.dumps(metrics))
        (run / "reproduce.json").write_text(json.dumps({"status": "finished"}))
        (run / BASELINE).write_text(json.dumps({"test_cluster_accuracy": base, "test_nmi": 0.5}))
    table = render(tmp_path, scan(tmp_path), "test")
    cells = [ln.strip("| ").split(" | ") for ln in table.splitlines() if ln.startswith("| ")]
    rows = {(c[0], c[1]): c for c in cells}
    assert rows["mnist-cluster", "clustering ACC (%)"][3:5] == [
        "75.00 ± 7.07 (best 80.00)",
        "54.00 ± 1.41",
    ]
    assert rows["mnist-cluster", "NMI (%)"][4] == "50.00 ± 0.00"
    assert rows["mnist-100", "test error (%)"][4] == "-"  # not a clustering row
