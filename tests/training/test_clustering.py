"""Clustering runs (paper 5.3.1): no labels anywhere before the test; the last epoch's
checkpoint selected, or the lowest val/loss on request."""

import csv
import json

import pytest
import yaml

from gmvae.cli.app import main
from gmvae.training import GMVAEDataModule

from ..conftest import QUIET, REPO

# The digits demo turned into a clustering run the way configs/*-cluster.yaml do it.
CLUSTERING = [
    "--data.num_labeled", "0",
    "--data.labeled_batch_size", "0",
    "--model.loss.w_assignment", "0",
    "--model.loss.w_metric", "0",
    "--model.loss.reconstruction", "bce",
    "--model.loss.w_gaussian", "5",
    "--checkpoint.monitor", "val/loss",
    "--checkpoint.mode", "min",
]  # fmt: skip


def test_validation_labels_are_hidden_when_the_run_has_none():
    dm = GMVAEDataModule("digits", num_labeled=0, labeled_batch_size=0, eval_batch_size=10_000)
    dm.setup("fit")
    dm.setup("test")
    _, val_labels = next(iter(dm.val_dataloader()))
    assert len(val_labels) == len(dm.val_set) and (val_labels == -1).all()
    _, train_labels, _ = next(iter(dm.train_dataloader()))
    assert (train_labels == -1).all()
    _, test_labels = next(iter(dm.test_dataloader()))  # the test set keeps its labels
    assert test_labels.min() == 0 and test_labels.max() == 9
    labeled = GMVAEDataModule("digits", num_labeled=50, labeled_batch_size=50)
    labeled.setup("fit")
    assert (next(iter(labeled.val_dataloader()))[1] >= 0).all()


@pytest.mark.parametrize(
    ("name", "dataset", "fsz", "gsz"),
    [("mnist-cluster", "mnist", 100, 150), ("fashion-cluster", "fashion-mnist", 200, 50)],
)
def test_clustering_configs_hold_the_papers_values(name, dataset, fsz, gsz):
    config = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
    assert config["data"]["dataset"] == dataset
    assert config["data"]["num_labeled"] == 0 and config["data"]["labeled_batch_size"] == 0
    assert config["data"]["unlabeled_batch_size"] == 64
    assert config["model"]["network"]["feature_size"] == fsz
    assert config["model"]["network"]["latent_size"] == gsz
    loss = config["model"]["loss"]
    assert loss["reconstruction"] == "bce" and loss["w_gaussian"] == 5
    assert loss["w_assignment"] == 0 and loss["w_metric"] == 0
    assert config["checkpoint"] == {"monitor": None}  # the last epoch: no label needed


def test_clustering_config_parses(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(REPO / "configs" / "mnist-cluster.yaml"), "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["checkpoint"]["monitor"] is None


@pytest.mark.slow
def test_a_clustering_run_selects_on_val_loss_and_reports_clustering_scores(tmp_path):
    demo = str(REPO / "configs" / "digits-demo.yaml")
    main(["fit", "--config", demo, *CLUSTERING, "--trainer.max_epochs", "2"]
         + ["--trainer.default_root_dir", str(tmp_path), *QUIET])  # fmt: skip
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["checkpoint_monitor"] == "val/loss" and metrics["best_val_accuracy"] is None
    assert metrics["num_labeled"] == 0
    assert 0.1 < metrics["test_cluster_accuracy"] <= 1.0 and 0.0 < metrics["test_nmi"] <= 1.0
    # The best checkpoint is the one with the lowest validation loss.
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    val_loss = {int(r["epoch"]): float(r["val/loss"]) for r in rows if r.get("val/loss")}
    assert metrics["best_val_score"] == pytest.approx(min(val_loss.values()), rel=1e-6)
    assert not any(r.get("val/accuracy") for r in rows)  # no validation label was read
    model = json.loads((tmp_path / "model.json").read_text())
    assert model["extra"] == {"dataset": "digits", "num_labeled": 0}


@pytest.mark.slow
def test_a_clustering_run_without_a_monitor_tests_its_last_epoch(tmp_path):
    demo = str(REPO / "configs" / "digits-demo.yaml")
    unmonitored = [*CLUSTERING[:-4], "--checkpoint.monitor", "null"]
    main(["fit", "--config", demo, *unmonitored, "--trainer.max_epochs", "3"]
         + ["--trainer.default_root_dir", str(tmp_path), *QUIET])  # fmt: skip
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["checkpoint_monitor"] is None and metrics["best_val_score"] is None
    assert metrics["best_checkpoint"].endswith("best-epoch002.ckpt")  # epochs 0, 1, 2
