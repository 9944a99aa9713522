import lightning as L
import pytest
import torch

from gmvae.config import LossConfig, NetworkConfig
from gmvae.errors import ConfigError
from gmvae.training import GMVAEDataModule, GMVAEModule

from ..conftest import bare_trainer


class FirstBatches(L.Callback):
    def __init__(self) -> None:
        self.batches: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0:
            self.batches.append(batch[0].clone())


def test_lightning_draws_a_fresh_permutation_every_epoch(tmp_path):
    dm = GMVAEDataModule("digits", num_labeled=50, unlabeled_batch_size=64, labeled_batch_size=50)
    module = GMVAEModule(
        (1, 8, 8),
        10,
        NetworkConfig(network="mlp", feature_size=16, latent_size=4, mlp_hidden_size=32),
        LossConfig(knn_k=3),
    )
    spy = FirstBatches()
    trainer = bare_trainer(tmp_path, max_epochs=2, limit_train_batches=1, callbacks=[spy])
    trainer.fit(module, datamodule=dm)
    assert len(spy.batches) == 2 and not torch.equal(spy.batches[0], spy.batches[1])


def test_train_batches_hide_unlabeled_labels_and_keep_labeled_ones():
    dm = GMVAEDataModule("digits", num_labeled=50, unlabeled_batch_size=64, labeled_batch_size=50)
    dm.setup("fit")
    x, labels, rows = next(iter(dm.train_dataloader()))
    assert x.shape == (114, 1, 8, 8) and x.dtype == torch.float32 and 0 <= x.min() <= x.max() <= 1
    assert (labels[:64] == -1).all() and (labels[64:] >= 0).all()
    assert sorted(labels[64:].tolist()) == sorted(dm.train_set.labels[dm.labeled_index].tolist())
    # rows: the training rows the batch holds, in its order
    assert torch.equal(x, dm.train_set.images[rows].float() / 255)
    assert sorted(rows[64:].tolist()) == sorted(dm.labeled_index.tolist())
    assert dm.test_set is None  # fitting never reads the test split


def test_clustering_and_labeled_batch_settings_must_agree():
    with pytest.raises(ConfigError, match="labeled_batch_size must be 0"):
        GMVAEDataModule("digits", num_labeled=0, labeled_batch_size=10)
    with pytest.raises(ConfigError, match="unknown dataset"):
        GMVAEDataModule("cifar")
