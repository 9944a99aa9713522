"""A GMVAE trained without labels, for commands that need features before any label exists.

``gmvae suggest`` on an unlabeled folder has no model yet; this trains one as
``GMVAEClassifier(n_classes=k).fit(X)`` would (the estimator's defaults: the paper's
network sizes, L_R summed, no auxiliary losses, 20 % held out, the epoch of lowest
validation loss kept), on the same Trainer as ``gmvae fit``. It lives here because the
entry points may not import one another.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from gmvae.config import LossConfig, NetworkConfig, TemperatureConfig
from gmvae.data.arrays import ImageArrays
from gmvae.data.split import holdout_split
from gmvae.model.gmvae import GMVAE
from gmvae.training.datamodule import ArrayDataModule
from gmvae.training.module import GMVAEModule
from gmvae.training.selection import BestWeights
from gmvae.training.trainer import build_trainer, quiet_lightning

BATCH_SIZE = 100
VALIDATION_FRACTION = 0.2


def train_clustering_model(
    images: torch.Tensor, n_clusters: int, epochs: int, *, seed: int = 0
) -> GMVAE:
    """A GMVAE with ``n_clusters`` categories trained on ``images`` (N, C, H, W), eval mode."""
    state = np.random.RandomState(seed)  # the estimator's seed derivation (random_state=seed)
    seed = int(state.randint(np.iinfo(np.int32).max))
    unlabeled = np.full(len(images), -1)
    train_idx, val_idx = holdout_split(unlabeled, VALIDATION_FRACTION, seed)
    if len(train_idx) % BATCH_SIZE == 1:  # a last batch of one row cannot train BatchNorm
        val_idx, train_idx = np.append(val_idx, train_idx[-1]), train_idx[:-1]
    labels = torch.from_numpy(unlabeled)
    data = ArrayDataModule(
        ImageArrays(images[train_idx], labels[train_idx], "images (train part)"),
        ImageArrays(images[val_idx], labels[val_idx], "images (validation part)"),
        tuple(str(k) for k in range(n_clusters)),
        unlabeled_batch_size=BATCH_SIZE,
        labeled_batch_size=0,
        seed=seed,
    )
    selector = BestWeights(use_accuracy=False)
    with torch.random.fork_rng(devices=[]), quiet_lightning():
        torch.manual_seed(seed)
        module = GMVAEModule(
            tuple(images.shape[1:]),
            n_clusters,
            NetworkConfig(),
            LossConfig(w_assignment=0.0, w_metric=0.0),
            TemperatureConfig(epochs=epochs / 4),
        )
        trainer = build_trainer(
            max_epochs=epochs,
            devices=1,
            logger=False,
            callbacks=[selector],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            default_root_dir=os.getcwd(),
        )
        trainer.fit(module, datamodule=data)
    if selector.state is not None:
        module.load_state_dict(selector.state)
    return module.model.cpu().eval()
