"""The logged ``train/*`` values are the row-weighted means over every step of their epoch."""

from __future__ import annotations

import lightning as L
import pytest

from gmvae.training.datamodule import GMVAEDataModule
from gmvae.training.module import GMVAEModule

from ..conftest import TINY_NETWORK, bare_trainer


class _StepsAndEpochs(L.Callback):
    """Each step's terms and row count, and what the trainer holds at each epoch's end."""

    def __init__(self) -> None:
        self.steps: list[list[tuple[dict[str, float], int]]] = []
        self.epochs: list[dict[str, float]] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.steps.append([])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        terms = {k: float(v) for k, v in outputs["terms"].items()}
        self.steps[-1].append((terms, len(batch[0])))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        metrics = trainer.callback_metrics
        self.epochs.append({k: float(v) for k, v in metrics.items() if k.startswith("train/")})


def test_each_epoch_logs_the_mean_of_all_its_steps(tmp_path):
    L.seed_everything(0)
    dm = GMVAEDataModule(
        "digits", num_labeled=50, unlabeled_batch_size=64, labeled_batch_size=50, seed=0
    )
    module = GMVAEModule((1, 8, 8), 10, network=TINY_NETWORK, loss={"knn_k": 3})
    recorder = _StepsAndEpochs()
    bare_trainer(tmp_path, max_epochs=3, limit_train_batches=4, callbacks=[recorder]).fit(
        module, datamodule=dm
    )
    assert [len(steps) for steps in recorder.steps] == [4, 4, 4]
    for steps, logged in zip(recorder.steps, recorder.epochs, strict=True):
        rows = sum(n for _, n in steps)
        for name in ("total", "reconstruction", "assignment", "metric"):
            expected = sum(terms[name] * n for terms, n in steps) / rows
            assert logged[f"train/{name}"] == pytest.approx(expected, rel=1e-5), name
