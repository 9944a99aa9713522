"""The LightningModule: one shared step for train / val / test, every loss term logged by name."""

from __future__ import annotations

import inspect

import lightning as L
import numpy as np
import torch
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from gmvae.compat import epoch_batches_done
from gmvae.config import LossConfig, NetworkConfig, TemperatureConfig, coerce
from gmvae.data.augment import check_shift, random_shift
from gmvae.errors import ConfigError
from gmvae.io.model_file import copy_encoder
from gmvae.losses.total import GMVAELoss
from gmvae.model.fast_kernels import convert_fast_kernels, set_fast_kernels
from gmvae.model.gmvae import GMVAE
from gmvae.training.averaging import EvaluationEMA
from gmvae.training.epoch_targets import EpochTargets, dataset_features
from gmvae.training.schedules import gumbel_temperature, linear_warmup
from gmvae.training.scores import ClusteringScores

_FUSED_ADAM_DEVICES = ("cpu", "cuda")
_CONFIGS = {"network": NetworkConfig, "loss": LossConfig, "temperature": TemperatureConfig}
TRAIN_LOGGED = (
    "total",
    "reconstruction",
    "gaussian",
    "categorical",
    "assignment",
    "metric",
    "temperature",
    "lr",
)


# The epoch targets of pseudo_labels="epoch_propagation", in checkpoints.
EPOCH_TARGETS_KEY = "epoch_targets"


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
        compile: wrap the network in ``torch.compile`` (a slow start; measured no gain
            on CPU before the fast kernels, see docs/PERFORMANCE.md).
        fast_kernels: run the conv layers whose shapes oneDNN runs slowly on matmul-based
            kernels (gmvae.model.fast_kernels), activations in place, and Adam as its fused
            kernel; the same maths and weights, faster (off gives the plain baseline's
            kernels; docs/PERFORMANCE.md).
        ema_decay: validate, select, test and export an exponential moving average of
            the weights with this decay, warmed up over the first steps
            (gmvae.training.averaging); 0 evaluates the trained weights, as the paper does.
        init_encoder: start the encoder (x -> x_hat) from that of a saved model
            (``model.safetensors`` or a ``.ckpt``), for example the clustering model that
            ``gmvae suggest`` chose the labels with; the other layers start fresh. None:
            every layer starts at random, as in the paper.
        augment_shift: move each training image by a random whole-pixel offset of at
            most this many pixels along each axis, drawn anew every step
            (gmvae.data.augment); evaluation sees the images as they are. 0: the
            images as they are, as in the paper.
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
        fast_kernels: bool = True,
        ema_decay: float = 0.0,
        init_encoder: str | None = None,
        augment_shift: int = 0,
    ) -> None:
        super().__init__()
        if not lr > 0:
            raise ConfigError(f"lr={lr!r} must be > 0")
        if num_classes < 2:
            raise ConfigError(f"num_classes={num_classes} must be >= 2: a classifier needs two")
        if not 0.0 <= ema_decay < 1.0:
            raise ConfigError(f"ema_decay={ema_decay!r} must be in [0, 1); 0 turns averaging off")
        image_shape = tuple(int(s) for s in image_shape)
        self.augment_shift = check_shift(augment_shift, image_shape)
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
                "fast_kernels": fast_kernels,
                "ema_decay": ema_decay,
                "init_encoder": init_encoder,
                "augment_shift": self.augment_shift,
            }
        )
        self.model = convert_fast_kernels(GMVAE(image_shape, num_classes, self.network_config))
        if init_encoder is not None:  # here, so that a bad file fails before any run folder
            copy_encoder(self.model, init_encoder)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        self.fast_kernels = fast_kernels
        set_fast_kernels(self.model, fast_kernels)
        self.compile_network = compile
        self.ema_decay = ema_decay
        self.criterion = GMVAELoss(
            self.loss_config, num_classes, feature_size=self.network_config.feature_size
        )
        self.epoch_targets = (
            EpochTargets(num_classes)
            if self.loss_config.pseudo_labels == "epoch_propagation"
            else None
        )
        # Epoch means of the training terms, kept as module state: a checkpoint saved
        # mid-epoch holds the partial sums, so a resumed run logs the same means.
        self.train_means = nn.ModuleDict({name: _persistent_mean() for name in TRAIN_LOGGED})
        self._train_means_logged: set[str] = set()  # names registered this epoch
        self._labeled_rows: int | None = None  # the data module's, read in setup()
        # Label -1 marks unlabeled rows (user data): they count in the loss, not the accuracy.
        self.val_accuracy = MulticlassAccuracy(num_classes, average="micro", ignore_index=-1)
        self.test_accuracy = MulticlassAccuracy(num_classes, average="micro", ignore_index=-1)
        # Row-weighted means synchronised as float sums: exact under DDP even when ranks hold
        # different row counts (Lightning 2.6's sync_dist mean floors its integer row count,
        # Lightning-AI/pytorch-lightning#21859). Metric states stay out of checkpoints.
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.test_clustering = ClusteringScores()

    @staticmethod
    def option_defaults(prefix: str = "") -> dict[str, object]:
        """Every option's default, flat ({"loss.knn_k": 5, "fast_kernels": True, ...})."""
        signature = inspect.signature(GMVAEModule.__init__).parameters
        out: dict[str, object] = {
            f"{prefix}{name}": p.default
            for name, p in signature.items()
            if name != "self" and name not in _CONFIGS
        }
        for name, cls in _CONFIGS.items():
            for key, value in vars(cls()).items():
                out[f"{prefix}{name}.{key}"] = value
        return out

    def configure_callbacks(self) -> list[L.Callback]:
        """The weight average, when asked for: it belongs to the model's options, so that
        ``gmvae fit``, the API and the benchmarks all get it from ``model.ema_decay``."""
        return [EvaluationEMA(self.ema_decay)] if self.ema_decay > 0 else []

    def configure_model(self) -> None:
        if self.compile_network:
            self.model.compile()  # in place: state_dict keys (and checkpoints) stay the same

    def on_after_batch_transfer(self, batch: tuple, dataloader_idx: int) -> tuple:
        x, *rest = batch  # (x, labels) or, for training batches, (x, labels, rows)
        return (x.contiguous(memory_format=self.memory_format), *rest)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities q(y|x), (B, c)."""
        return torch.softmax(self.model.classify(x), dim=-1)

    def on_train_epoch_start(self) -> None:
        self._train_means_logged = set()
        if self.epoch_targets is not None:
            self._refresh_epoch_targets()

    def _refresh_epoch_targets(self) -> None:
        """The epoch's targets, once label terms are on: kept when a resume lands within the
        epoch they were made for."""
        epoch = self.current_epoch
        if epoch < int(self.loss_config.label_start) or self.epoch_targets.epoch == epoch:
            return
        dataset = self.trainer.train_dataloader.dataset
        features = dataset_features(
            self.model,
            dataset.images,
            device=self.device,
            memory_format=self.memory_format,
            context=self.trainer.precision_plugin.forward_context,
        )
        self.epoch_targets.refresh(features, dataset.labels, epoch)

    def on_train_start(self) -> None:
        # seed_everything gives every DDP rank the same seed, hence the same Gumbel and z
        # noise for row i of every rank's batch; N ranks should sample like one batch N
        # times larger, so ranks > 0 move to streams of their own (rank 0 is unchanged).
        rank = self.trainer.global_rank
        if rank > 0:
            torch.manual_seed(
                int(np.random.SeedSequence([torch.initial_seed(), rank]).generate_state(1)[0])
            )

    def setup(self, stage: str) -> None:
        """Fail before training, not at the first step, when the batches cannot feed the k-NN
        or do not say where their labeled rows are."""
        if stage == "fit":
            labeled = getattr(self.trainer.datamodule, "labeled_batch_size", None)
            self.check_batches(labeled)
            self._labeled_rows = labeled
            if labeled is None and not self.loss_config.labeled_generative:
                raise ConfigError(
                    "model.loss.labeled_generative=false needs a data module that puts "
                    "labeled_batch_size labeled rows last in every training batch "
                    "(GMVAEDataModule, ArrayDataModule); this one has no labeled_batch_size"
                )

    def check_batches(self, labeled_batch_size: int | None) -> None:
        """Raise :class:`ConfigError` when ``labeled_batch_size`` rows cannot feed the k-NN."""
        cfg = self.loss_config
        if labeled_batch_size is not None and cfg.uses_labels and cfg.knn_k > labeled_batch_size:
            raise ConfigError(
                f"model.loss.knn_k={cfg.knn_k} is larger than "
                f"data.labeled_batch_size={labeled_batch_size}: the k-NN vote needs k labeled "
                "rows in every batch"
            )

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse a checkpoint made with other options, before its weights are loaded.

        Resuming (fit) needs every option equal; evaluating needs the same network.
        """
        saved = dict(checkpoint.get("hyper_parameters", {}))
        for name, cls in _CONFIGS.items():  # options newer than the checkpoint: their defaults
            if isinstance(saved.get(name), dict):
                saved[name] = {**vars(cls()), **saved[name]}
        keys = ("image_shape", "num_classes", "network")
        trainer = _attached_trainer(self)
        if trainer is not None and trainer.state.fn == "fit":
            keys = tuple(self.hparams)
        changed = [k for k in keys if k in saved and _plain(saved[k]) != _plain(self.hparams[k])]
        if changed:
            diff = "; ".join(
                f"{k}: {saved[k]} (checkpoint) vs {self.hparams[k]} (now)" for k in changed
            )
            raise ConfigError(
                f"the checkpoint was made with other model options: {diff}. Pass the options it "
                "was trained with (its run directory's config.yaml)"
            )
        if self.epoch_targets is not None and EPOCH_TARGETS_KEY in checkpoint:
            self.epoch_targets.load_state_dict(checkpoint[EPOCH_TARGETS_KEY])

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Save the training means as a resume needs them: a run resumed from a checkpoint
        taken after an epoch's last batch starts logging the next epoch, from zero."""
        if self.epoch_targets is not None:
            checkpoint[EPOCH_TARGETS_KEY] = self.epoch_targets.state_dict()
        trainer = _attached_trainer(self)
        if trainer is None or not trainer.training and not trainer.validating:
            return
        done = epoch_batches_done(trainer)
        if done < trainer.num_training_batches:
            return  # mid-epoch: the partial sums continue after the resume
        # With EvaluationEMA, "state_dict" holds the average and "current_model_state"
        # the trained module, which is what a resume loads.
        for name in ("state_dict", "current_model_state"):
            state = checkpoint.get(name, {})
            for key in [k for k in state if k.startswith("train_means.")]:
                state[key] = torch.zeros_like(state[key])

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> dict[str, torch.Tensor | dict[str, torch.Tensor]]:
        x, labels, *rest = batch
        x = random_shift(x, self.augment_shift)
        progress = self.current_epoch + batch_idx / max(self.trainer.num_training_batches, 1)
        tau = gumbel_temperature(progress, self.temperature_config)
        out = self.model(
            x,
            temperature=tau,
            hard=self.temperature_config.hard,
            generative_rows=self._generative_rows(len(x)),
        )
        label_progress = progress - self.loss_config.label_start
        ramp = linear_warmup(label_progress, self.loss_config.pseudo_label_warmup)
        targets = None
        if self.epoch_targets is not None and label_progress >= 0:
            if not rest:
                raise ConfigError(
                    "pseudo_labels='epoch_propagation' needs training batches that carry their "
                    "row indices, (x, labels, rows), as GMVAEDataModule's do"
                )
            targets = self.epoch_targets.lookup(rest[0])
        terms = self.criterion(
            out,
            x,
            labels,
            pseudo_label_weight=ramp,
            include_auxiliary=label_progress >= 0,
            pseudo_targets=targets,
        )
        lr = self.trainer.optimizers[0].param_groups[0]["lr"]  # a Python float: no sync
        logged = {**terms.named(), "temperature": torch.tensor(tau), "lr": torch.tensor(lr)}
        for name, value in logged.items():
            self.train_means[name].update(value.detach(), weight=len(x))
        if len(logged) > len(self._train_means_logged):
            # Lightning computes a logged Metric from its own state at the epoch's end, so
            # one registration per epoch is enough; logging all eight every step cost 2.5 %
            # of a step in Python (docs/PERFORMANCE.md). The terms in use can grow within an
            # epoch (L_A and L_M start at model.loss.label_start), never shrink.
            for name in logged.keys() - self._train_means_logged:
                self.log(f"train/{name}", self.train_means[name], on_step=False, on_epoch=True)
            self._train_means_logged |= logged.keys()
        # The named terms let NonFiniteLossGuard say which one went NaN.
        return {"loss": terms.total, "terms": {k: v.detach() for k, v in terms.named().items()}}

    def _generative_rows(self, batch_size: int) -> int | None:
        """Leading (unlabeled) rows of a training batch that get the VAE terms.

        The data module's batch sampler puts its ``labeled_batch_size`` labeled rows
        last (read once, and checked, in :meth:`setup`), so the count needs no look at the
        labels (no host synchronisation).
        """
        if self.loss_config.labeled_generative:
            return None
        return batch_size - self._labeled_rows

    def _eval_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        x, labels = batch
        out = self.model(x)
        terms = self.criterion(out, x, labels, include_auxiliary=False)
        loss = self.val_loss if stage == "val" else self.test_loss
        loss.update(terms.total.detach(), weight=len(x))
        self.log(f"{stage}/loss", loss, on_epoch=True, batch_size=len(x))
        # Labels of -1 are hidden: runs without labels (clustering) get no validation labels
        # from the data module, so they log no val/accuracy and select on val/loss.
        if (labels >= 0).any():
            metric = self.val_accuracy if stage == "val" else self.test_accuracy
            metric.update(out.logits, labels)  # ignore_index=-1 skips unlabeled rows
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
        params = list(self.parameters())
        # One fused kernel for all parameters instead of a loop of small ops per tensor
        # (MNIST, 2 CPU threads: 0.9-1.0 ms instead of 2.1-2.8 ms, bench/kernels.py); same update.
        fused = self.fast_kernels and all(p.device.type in _FUSED_ADAM_DEVICES for p in params)
        return torch.optim.Adam(params, lr=self.lr, fused=fused or None)


def _plain(value: object) -> object:
    """Tuples and lists compare equal (a checkpoint holds lists where the code has tuples)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _persistent_mean() -> MeanMetric:
    """A weighted mean whose running sums are saved in checkpoints; no NaN check (no sync)."""
    mean = MeanMetric(nan_strategy="disable")
    mean.persistent(True)
    return mean


def _attached_trainer(module: L.LightningModule) -> L.Trainer | None:
    """The module's Trainer, or None outside one (``module.trainer`` raises there)."""
    try:
        return module.trainer
    except RuntimeError:
        return None
