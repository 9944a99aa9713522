"""The LightningModule: one shared step for train / val / test, every loss term logged by name."""

from __future__ import annotations

import lightning as L
import torch
from torchmetrics.classification import MulticlassAccuracy

from gmvae.config import LossConfig, NetworkConfig, TemperatureConfig, coerce
from gmvae.errors import ConfigError
from gmvae.losses.total import GMVAELoss
from gmvae.model.gmvae import GMVAE
from gmvae.training.scores import ClusteringScores
from gmvae.training.temperature import gumbel_temperature


class GMVAEModule(L.LightningModule):
    """Trains a :class:`GMVAE` with :class:`GMVAELoss` and Adam (paper 5.2).

    Args:
        image_shape: (C, H, W) of the inputs; set from the data by the CLI.
        num_classes: number of categories c; set from the data by the CLI.
        network: sizes of the networks.
        loss: weights and settings of the loss terms.
        temperature: Gumbel-Softmax temperature schedule.
        lr: Adam learning rate.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        num_classes: int = 10,
        network: NetworkConfig | None = None,
        loss: LossConfig | None = None,
        temperature: TemperatureConfig | None = None,
        lr: float = 1e-3,
    ) -> None:
        super().__init__()
        if not lr > 0:
            raise ConfigError(f"lr={lr!r} must be > 0")
        image_shape = tuple(int(s) for s in image_shape)
        self.network_config = coerce(NetworkConfig, network)
        self.loss_config = coerce(LossConfig, loss)
        self.temperature_config = coerce(TemperatureConfig, temperature)
        self.lr = lr
        # Plain types only, so that a checkpoint loads with torch.load(weights_only=True).
        self.save_hyperparameters(
            {
                "image_shape": list(image_shape),
                "num_classes": num_classes,
                "network": vars(self.network_config).copy(),
                "loss": {
                    **vars(self.loss_config),
                    "metric_kwargs": dict(self.loss_config.metric_kwargs),
                },
                "temperature": vars(self.temperature_config).copy(),
                "lr": lr,
            }
        )
        self.model = GMVAE(image_shape, num_classes, self.network_config)
        self.criterion = GMVAELoss(self.loss_config, num_classes)
        self.val_accuracy = MulticlassAccuracy(num_classes, average="micro")
        self.test_accuracy = MulticlassAccuracy(num_classes, average="micro")
        self.test_clustering = ClusteringScores()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities q(y|x), (B, c)."""
        return torch.softmax(self.model.classify(x), dim=-1)

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, labels = batch
        tau = gumbel_temperature(
            self.current_epoch + batch_idx / max(self.trainer.num_training_batches, 1),
            self.temperature_config,
        )
        out = self.model(x, temperature=tau, hard=self.temperature_config.hard)
        terms = self.criterion(out, x, labels)
        self.log_dict(
            {f"train/{k}": v for k, v in terms.named().items()},
            on_step=False,
            on_epoch=True,
            batch_size=len(x),
        )
        self.log("train/temperature", tau, on_step=False, on_epoch=True, batch_size=len(x))
        return terms.total

    def _eval_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        x, labels = batch
        out = self.model(x)
        terms = self.criterion(out, x, labels, include_auxiliary=False)
        self.log(f"{stage}/loss", terms.total, on_epoch=True, batch_size=len(x), sync_dist=True)
        # Labels of -1 are hidden: runs without labels (clustering) get no validation labels
        # from the data module, so they log no val/accuracy and select on val/loss.
        known = labels >= 0
        if known.any():
            metric = self.val_accuracy if stage == "val" else self.test_accuracy
            metric.update(out.logits[known], labels[known])
            self.log(f"{stage}/accuracy", metric, on_epoch=True, prog_bar=True, batch_size=len(x))
        if stage == "test":
            self.test_clustering.update(out.logits.argmax(-1), labels)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        """Clusters = argmax q(y|x); scored after the best cluster -> class matching."""
        scores = self.test_clustering.compute()
        self.log_dict({f"test/{k}": v for k, v in scores.items()})
        self.test_clustering.reset()

    def predict_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        return self(batch[0])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)
