"""Experiment tracking: metrics.csv always, with every loss term, val accuracy, the Gumbel
temperature and the learning rate; a logger the user asks for comes on top of it."""

import csv
import json

import pytest

from gmvae.cli.app import main

from ..conftest import DEMO, QUIET

COLUMNS = (
    "train/total",
    "train/reconstruction",
    "train/gaussian",
    "train/categorical",
    "train/assignment",
    "train/metric",
    "train/temperature",
    "val/accuracy",
    "val/loss",
    "train/lr",
)


@pytest.mark.slow
def test_a_tensorboard_logger_adds_to_the_flat_run_directory(tmp_path):
    pytest.importorskip("tensorboard")
    run, board = tmp_path / "run", tmp_path / "board"
    main(
        [
            "fit",
            "--config",
            DEMO,
            "--trainer.max_epochs",
            "2",
            "--trainer.default_root_dir",
            str(run),
            "--trainer.logger",
            "TensorBoardLogger",
            "--trainer.logger.save_dir",
            str(board),
            *QUIET,
        ]
    )
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    for column in COLUMNS:
        assert any(r.get(column) for r in rows), column
    assert float(next(r["train/lr"] for r in rows if r.get("train/lr"))) == pytest.approx(1e-3)
    # The run directory keeps its flat layout; TensorBoard's event files go where asked.
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["best_checkpoint"].startswith(str(run / "checkpoints"))
    assert (run / "config.yaml").is_file() and (run / "model.safetensors").is_file()
    events = list(board.rglob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for event_file in events:
        acc = EventAccumulator(str(event_file))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    assert {"train/total", "val/accuracy", "train/temperature", "train/lr"} <= tags


def test_logger_false_still_trains_without_a_learning_rate_monitor(tmp_path):
    main(
        [
            "fit",
            "--config",
            DEMO,
            "--trainer.max_epochs",
            "1",
            "--trainer.logger",
            "false",
            "--trainer.default_root_dir",
            str(tmp_path),
            *QUIET,
        ]
    )
    assert (tmp_path / "metrics.json").is_file() and not (tmp_path / "metrics.csv").exists()
