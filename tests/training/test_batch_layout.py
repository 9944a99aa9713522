"""The batch layout that ``labeled_generative: false`` relies on: labeled rows last, their
count declared by the data module and checked before training."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from gmvae.errors import ConfigError
from gmvae.training.datamodule import GMVAEDataModule
from gmvae.training.module import GMVAEModule

from ..conftest import TINY_NETWORK, bare_trainer

LOSS = {"knn_k": 3, "labeled_generative": False}


class _Batches(L.Callback):
    def __init__(self) -> None:
        self.rows: list[tuple[int, int | None]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        x, labels, _ = batch
        generative = pl_module._generative_rows(len(x))
        self.rows.append((generative, int((labels[generative:] >= 0).sum())))
        assert bool((labels[:generative] < 0).all())  # the VAE terms see unlabeled rows only


def test_the_generative_rows_are_the_unlabeled_ones(tmp_path):
    L.seed_everything(0)
    dm = GMVAEDataModule(
        "digits", num_labeled=50, unlabeled_batch_size=64, labeled_batch_size=30, seed=0
    )
    module = GMVAEModule((1, 8, 8), 10, network=TINY_NETWORK, loss=LOSS)
    batches = _Batches()
    bare_trainer(tmp_path, max_steps=3, callbacks=[batches]).fit(module, datamodule=dm)
    assert batches.rows == [(64, 30)] * 3


class _NoLayout(L.LightningDataModule):
    """Batches of images and labels with no word on where the labeled rows are."""

    def train_dataloader(self) -> DataLoader:
        x = torch.rand(64, 1, 8, 8)
        labels = torch.cat([torch.full((54,), -1), torch.arange(10)])
        return DataLoader(TensorDataset(x, labels), batch_size=32, shuffle=True)


def test_a_data_module_without_the_layout_is_refused_before_training(tmp_path):
    module = GMVAEModule((1, 8, 8), 10, network=TINY_NETWORK, loss=LOSS)
    with pytest.raises(ConfigError, match="labeled_generative=false needs a data module"):
        bare_trainer(tmp_path, max_steps=1).fit(module, datamodule=_NoLayout())
    # The paper's objective reads no layout: the same data module trains.
    paper = GMVAEModule((1, 8, 8), 10, network=TINY_NETWORK, loss={"knn_k": 3})
    bare_trainer(tmp_path, max_steps=1).fit(paper, datamodule=_NoLayout())
