"""The ``gmvae`` command run as a user runs it, on the offline digits demo."""

import csv
import json
import subprocess
import sys

import pytest

from gmvae.cli.app import main

from ..conftest import DEMO, QUIET, REPO


def gmvae(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gmvae", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


@pytest.mark.slow
def test_digits_demo_learns(demo_run):
    """The README's demo: at least 85 % test accuracy with 50 labels, its last epoch tested
    (tests/figures/test_collapse.py checks that the same model generates)."""
    metrics = json.loads((demo_run / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.85, metrics
    assert metrics["test_error"] == pytest.approx(100 * (1 - metrics["test_accuracy"]), abs=1e-3)
    assert metrics["epochs"] == 200 and metrics["checkpoint_monitor"] is None
    assert metrics["best_checkpoint"].endswith("best-epoch199.ckpt")


@pytest.mark.slow
def test_fit_then_test_writes_the_run_directory(tmp_path):
    run = tmp_path / "run"
    done = gmvae(
        "fit",
        "--config",
        DEMO,
        "--trainer.max_epochs",
        "2",
        "--trainer.default_root_dir",
        str(run),
        "--seed_everything",
        "3",
        *QUIET,
    )
    assert done.returncode == 0, done.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"test_error", "best_val_accuracy", "epochs", "train_seconds"} <= set(metrics)
    assert metrics["epochs"] == 2 and metrics["seed"] == 3
    assert (run / "config.yaml").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    for column in (
        "train/total",
        "train/reconstruction",
        "train/gaussian",
        "train/categorical",
        "train/assignment",
        "train/metric",
        "train/temperature",
        "val/accuracy",
        "val/loss",
    ):
        assert any(r.get(column) for r in rows), column
    assert not list(tmp_path.glob("lightning_logs"))  # nothing written outside the run directory

    best = metrics["best_checkpoint"]
    tested = gmvae(
        "test",
        "--config",
        DEMO,
        "--ckpt_path",
        best,
        "--trainer.default_root_dir",
        str(tmp_path / "test"),
        *QUIET,
    )
    assert tested.returncode == 0, tested.stderr
    assert "test/accuracy" in tested.stdout


@pytest.mark.slow
def test_max_time_ends_training(tmp_path):
    """Every run has a Timer of its own, beside which Lightning ignores --trainer.max_time:
    the run's Timer keeps it, and the run ends, tested, as one that reached max_epochs."""
    args = ["--trainer.max_time", "00:00:00:01", "--trainer.max_epochs", "1000"]
    main(["fit", "--config", DEMO, *args, "--trainer.default_root_dir", str(tmp_path), *QUIET])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 0 < metrics["epochs"] < 1000


def test_missing_data_is_one_clear_message_and_exit_2(tmp_path):
    done = gmvae(
        "fit",
        "--config",
        str(REPO / "configs" / "mnist-100.yaml"),
        "--data.data_dir",
        str(tmp_path),
        "--data.download",
        "false",
        "--trainer.default_root_dir",
        str(tmp_path / "run"),
        *QUIET,
    )
    assert done.returncode == 2
    assert "mnist data not found" in done.stderr and str(tmp_path / "mnist") in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_option_value_exits_2_naming_the_choices(tmp_path):
    done = gmvae(
        "fit",
        "--config",
        DEMO,
        "--model.loss.reconstruction",
        "l1",
        "--trainer.default_root_dir",
        str(tmp_path),
    )
    assert done.returncode == 2
    assert "mse" in done.stderr and "Traceback" not in done.stderr


def test_exported_model_loads_without_pickle_and_predicts_like_the_checkpoint(tmp_path):
    import torch

    from gmvae.data import load_split
    from gmvae.data.arrays import to_float
    from gmvae.estimator import GMVAEClassifier
    from gmvae.io.model_file import load_model
    from gmvae.training import GMVAEModule

    main(
        [
            "fit",
            "--config",
            DEMO,
            "--trainer.max_epochs",
            "1",
            "--trainer.default_root_dir",
            str(tmp_path),
            *QUIET,
        ]
    )
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    model, card = load_model(metrics["model_file"])
    assert card.image_shape == (1, 8, 8) and card.class_names[3] == "3"
    x = to_float(load_split("digits", "test").images)
    ckpt = torch.load(metrics["best_checkpoint"], map_location="cpu", weights_only=True)
    module = GMVAEModule(**ckpt["hyper_parameters"])
    module.load_state_dict(ckpt["state_dict"])
    with torch.inference_mode():
        torch.testing.assert_close(model.classify(x), module.eval().model.classify(x))
    # The Lightning checkpoint itself loads too (weights_only), in load_model and the estimator.
    from_ckpt, ckpt_card = load_model(metrics["best_checkpoint"])
    assert ckpt_card.network == card.network
    with torch.inference_mode():
        torch.testing.assert_close(from_ckpt.classify(x), model.classify(x))
    estimator = GMVAEClassifier.load(metrics["best_checkpoint"])
    images = load_split("digits", "test").images[:, 0].numpy()
    assert (estimator.predict(images) == model.classify(x).argmax(1).numpy()).all()
