"""The pseudo-label warm-up reaches the loss through the training step."""

from __future__ import annotations

import lightning as L
import pytest

from gmvae.training.datamodule import GMVAEDataModule
from gmvae.training.module import GMVAEModule

from ..conftest import TINY_NETWORK, bare_trainer


class _FirstStepTerms(L.Callback):
    def __init__(self) -> None:
        self.outputs: dict | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.outputs is None:
            self.outputs = outputs


def _digits() -> GMVAEDataModule:
    return GMVAEDataModule(
        "digits", num_labeled=50, unlabeled_batch_size=64, labeled_batch_size=50, seed=0
    )


def _first_step(warmup: float, tmp_path, **loss) -> dict:
    """Loss terms of the first training step (only L_A and L_M switched on, unless ``loss``)."""
    L.seed_everything(0)
    dm = _digits()
    module = GMVAEModule(
        (1, 8, 8),
        10,
        network=TINY_NETWORK,
        loss={
            "knn_k": 3,
            "w_reconstruction": 0.0,
            "w_gaussian": 0.0,
            "w_categorical": 0.0,
            "pseudo_label_warmup": warmup,
            **loss,
        },
    )
    recorder = _FirstStepTerms()
    trainer = bare_trainer(tmp_path, max_steps=1, callbacks=[recorder])
    trainer.fit(module, datamodule=dm)
    return {k: float(v) for k, v in recorder.outputs["terms"].items()}


def test_first_step_of_a_warmup_counts_only_the_labeled_rows(tmp_path):
    plain = _first_step(0.0, tmp_path)
    assert plain["total"] == pytest.approx(plain["assignment"] + plain["metric"], rel=1e-6)
    ramped = _first_step(5.0, tmp_path)  # weight 0 at the first step
    assert ramped["assignment"] == pytest.approx(plain["assignment"], rel=1e-6)  # same batch
    # No L_M, and only the 50 labeled rows' share (of 114) of the cross-entropy.
    assert 0 < ramped["total"] < ramped["assignment"]


def test_label_start_trains_the_variational_terms_alone_first(tmp_path):
    terms = _first_step(0.0, tmp_path, label_start=1.0, w_reconstruction=1.0)
    assert "assignment" not in terms and "metric" not in terms
    assert terms["total"] == pytest.approx(terms["reconstruction"], rel=1e-6)
    started = _first_step(0.0, tmp_path, label_start=0.0, w_reconstruction=1.0)
    assert {"assignment", "metric"} <= set(started)


def test_terms_that_start_within_an_epoch_are_logged_for_it(tmp_path):
    L.seed_everything(0)
    dm = _digits()
    module = GMVAEModule((1, 8, 8), 10, network=TINY_NETWORK, loss={"knn_k": 3, "label_start": 0.5})
    trainer = bare_trainer(tmp_path, max_epochs=1)
    trainer.fit(module, datamodule=dm)
    logged = set(trainer.callback_metrics)
    assert {"train/reconstruction", "train/assignment", "train/metric"} <= logged
