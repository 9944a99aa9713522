"""pseudo_labels='epoch_propagation': one table of targets per epoch, made from the features
at the epoch's start, looked up by the rows of each batch, and kept across a resume."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from gmvae.config import LossConfig
from gmvae.errors import ConfigError
from gmvae.training import epoch_targets
from gmvae.training.datamodule import GMVAEDataModule
from gmvae.training.module import EPOCH_TARGETS_KEY, GMVAEModule

from ..conftest import TINY_NETWORK, bare_trainer

LOSS = {"knn_k": 3, "pseudo_labels": "epoch_propagation", "label_start": 1.0}


def _data() -> GMVAEDataModule:
    return GMVAEDataModule(
        "digits", num_labeled=50, unlabeled_batch_size=256, labeled_batch_size=30, seed=0
    )


class _Record(L.Callback):
    """Per training step: the epoch, the table's epoch, and the targets the loss got."""

    def __init__(self, module: GMVAEModule) -> None:
        # (epoch, the table's epoch, the targets the loss got, the batch's rows, the table)
        self.steps: list[tuple] = []
        forward = module.criterion.forward

        def spy(*args, pseudo_targets=None, **kwargs):
            self._targets = pseudo_targets
            return forward(*args, pseudo_targets=pseudo_targets, **kwargs)

        module.criterion.forward = spy

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._rows = batch[2]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        table = pl_module.epoch_targets
        current = None if table.table is None else table.table.clone()
        self.steps.append((trainer.current_epoch, table.epoch, self._targets, self._rows, current))


class _SaveAt(L.Callback):
    """A checkpoint taken within the epoch, as the autosave takes one."""

    def __init__(self, step: int, path) -> None:
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            trainer.save_checkpoint(self.path)


def test_the_config_refuses_targets_from_untrained_features():
    with pytest.raises(ConfigError, match="label_start >= 1"):
        LossConfig(pseudo_labels="epoch_propagation")
    with pytest.raises(ConfigError, match="align_assignments"):
        LossConfig(pseudo_labels="epoch_propagation", label_start=1, align_assignments=True)
    LossConfig(pseudo_labels="epoch_propagation", label_start=1)


def test_each_labeled_epoch_trains_on_one_table_made_at_its_start(tmp_path):
    L.seed_everything(0)
    dm = _data()
    module = GMVAEModule((1, 8, 8), 10, network=TINY_NETWORK, loss=LOSS)
    record = _Record(module)
    bare_trainer(tmp_path, max_epochs=3, callbacks=[record]).fit(module, datamodule=dm)

    observed = module.trainer.train_dataloader.dataset.labels
    labeled = observed >= 0
    table = module.epoch_targets.table
    assert module.epoch_targets.epoch == 2 and table.shape == observed.shape
    assert torch.equal(table[labeled], observed[labeled])  # labels are kept
    assert (table >= 0).all() and len(table.unique()) > 1
    assert [e for e, *_ in record.steps] == [0] * 4 + [1] * 4 + [2] * 4
    for epoch, table_epoch, targets, rows, current in record.steps:
        if epoch == 0:
            assert targets is None  # label terms are off before label_start
        else:
            assert table_epoch == epoch and torch.equal(targets, current[rows])
    tables = [current for e, *_, current in record.steps if e > 0]
    assert all(torch.equal(t, tables[0]) for t in tables[:4])  # one table an epoch
    assert not torch.equal(tables[0], tables[-1])  # epoch 2 propagated anew


def test_a_resume_within_an_epoch_keeps_its_table(tmp_path, monkeypatch):
    L.seed_everything(0)
    module = GMVAEModule((1, 8, 8), 10, network=TINY_NETWORK, loss=LOSS)
    path = tmp_path / "mid.ckpt"
    # 958 training rows, 256 unlabeled a batch: 4 steps an epoch; saved in epoch 1's middle.
    trainer = bare_trainer(tmp_path, max_steps=6, callbacks=[_SaveAt(6, path)])
    trainer.fit(module, datamodule=_data())
    assert module.epoch_targets.epoch == 1
    saved = module.epoch_targets.table.clone()
    state = torch.load(path, weights_only=True)[EPOCH_TARGETS_KEY]
    assert state["epoch"] == 1 and torch.equal(state["table"], saved)

    made = []
    real = epoch_targets.EpochTargets.refresh
    monkeypatch.setattr(
        epoch_targets.EpochTargets,
        "refresh",
        lambda self, *a, **k: (made.append(a[-1]), real(self, *a, **k)),
    )
    resumed = GMVAEModule((1, 8, 8), 10, network=TINY_NETWORK, loss=LOSS)
    record = _Record(resumed)
    bare_trainer(tmp_path, max_epochs=3, callbacks=[record]).fit(
        resumed, datamodule=_data(), ckpt_path=path, weights_only=True
    )
    first = [(t, rows) for e, _, t, rows, _ in record.steps if e == 1]
    assert len(first) == 2 and all(torch.equal(t, saved[rows]) for t, rows in first)
    assert made == [2]  # epoch 1's table came from the checkpoint; epoch 2 made its own
