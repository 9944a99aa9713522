"""The LightningModule: one shared step for train / val / test, every loss term logged by name."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torchmetrics.aggregation import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from gmvae.config import LossConfig, NetworkConfig, TemperatureConfig, coerce
from gmvae.errors import ConfigError
from gmvae.losses.total import GMVAELoss
from gmvae.model.gmvae import GMVAE
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
        channels_last: keep conv weights and inputs in NHWC, the fast layout of oneDNN
            and cuDNN (same results; off gives the plain NCHW baseline).
        compile: wrap the network in ``torch.compile`` (costs ~40 s at start; measured no
            gain on CPU, see docs/PERFORMANCE.md).
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        num_classes: int = 10,
        network: NetworkConfig | None = None,
        loss: LossConfig | None = None,
        temperature: TemperatureConfig | None = None,
        lr: float = 1e-3,
        channels_last: bool = True,
        compile: bool = False,
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
                "channels_last": channels_last,
                "compile": compile,
            }
        )
        self.model = GMVAE(image_shape, num_classes, self.network_config)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        self.compile_network = compile
        self.criterion = GMVAELoss(self.loss_config, num_classes)
        # Label -1 marks unlabeled rows (user data): they count in the loss, not the accuracy.
        self.val_accuracy = MulticlassAccuracy(num_classes, average="micro", ignore_index=-1)
        self.test_accuracy = MulticlassAccuracy(num_classes, average="micro", ignore_index=-1)
        # Row-weighted means synchronised as float sums: exact under DDP even when ranks hold
        # different row counts (Lightning 2.6's sync_dist mean floors its integer row count,
        # Lightning-AI/pytorch-lightning#21859). Metric states stay out of checkpoints.
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()

    def configure_model(self) -> None:
        if self.compile_network:
            self.model.compile()  # in place: state_dict keys (and checkpoints) stay the same

    def on_after_batch_transfer(self, batch: tuple, dataloader_idx: int) -> tuple:
        x, labels = batch
        return x.contiguous(memory_format=self.memory_format), labels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities q(y|x), (B, c)."""
        return torch.softmax(self.model.classify(x), dim=-1)

    def on_train_start(self) -> None:
        # seed_everything gives every DDP rank the same seed, hence the same Gumbel and z
        # noise for row i of every rank's batch; N ranks should sample like one batch N
        # times larger, so ranks > 0 move to streams of their own (rank 0 is unchanged).
        rank = self.trainer.global_rank
        if rank > 0:
            torch.manual_seed(
                int(np.random.SeedSequence([torch.initial_seed(), rank]).generate_state(1)[0])
            )

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, labels = batch
        tau = gumbel_temperature(
            self.current_epoch + batch_idx / max(self.trainer.num_training_batches, 1),
            self.temperature_config,
        )
        out = self.model(
            x,
            temperature=tau,
            hard=self.temperature_config.hard,
            generative_rows=self._generative_rows(len(x)),
        )
        terms = self.criterion(out, x, labels)
        # sync_dist: under DDP the epoch means cover every rank's rows (one all-reduce per
        # term at the epoch's end, none per step; exact, as every rank runs equal batches).
        self.log_dict(
            {f"train/{k}": v for k, v in terms.named().items()},
            on_step=False,
            on_epoch=True,
            batch_size=len(x),
            sync_dist=True,
        )
        self.log(
            "train/temperature",
            tau,
            on_step=False,
            on_epoch=True,
            batch_size=len(x),
            sync_dist=True,
        )
        return terms.total

    def _generative_rows(self, batch_size: int) -> int | None:
        """Leading (unlabeled) rows of a training batch that get the VAE terms.

        The batch sampler puts the ``labeled_batch_size`` labeled rows last, so the
        count needs no look at the labels (no host synchronisation).
        """
        if self.loss_config.labeled_generative:
            return None
        labeled = getattr(self.trainer.datamodule, "labeled_batch_size", 0)
        return batch_size - labeled

    def _eval_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        x, labels = batch
        out = self.model(x)
        terms = self.criterion(out, x, labels, include_auxiliary=False)
        metric = self.val_accuracy if stage == "val" else self.test_accuracy
        metric.update(out.logits, labels)
        loss = self.val_loss if stage == "val" else self.test_loss
        loss.update(terms.total.detach(), weight=len(x))
        self.log(f"{stage}/loss", loss, on_epoch=True, batch_size=len(x))
        self.log(f"{stage}/accuracy", metric, on_epoch=True, prog_bar=True, batch_size=len(x))

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def predict_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        return self(batch[0])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)
