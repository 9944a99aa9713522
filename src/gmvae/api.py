"""``GMVAEClassifier``: the semi-supervised GMVAE as a scikit-learn estimator.

Training runs on the Lightning Trainer with the same module, loaders and half-labeled
batch sampler as ``gmvae fit``; model files are the same safetensors + JSON pair.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import CSVLogger
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from gmvae.config import LossConfig, NetworkConfig, TemperatureConfig
from gmvae.data.arrays import ImageArrays, to_float
from gmvae.data.layout import from_images, to_images
from gmvae.data.split import holdout_split
from gmvae.errors import ConfigError, DataError
from gmvae.export import ModelCard, load_model, save_model
from gmvae.suggest import suggest as suggest_rows
from gmvae.training.datamodule import ArrayDataModule
from gmvae.training.module import GMVAEModule
from gmvae.training.selection import BestWeights
from gmvae.training.threads import ThreadTuner

__all__ = ["GMVAEClassifier"]

# Labels are scarce: a class with fewer labeled rows keeps them all for training (holding
# out 1 of 5 cost 5-10 points of accuracy on the digits), and selection uses the loss.
MIN_LABELED_FOR_VALIDATION = 10


class GMVAEClassifier(ClassifierMixin, BaseEstimator):
    """Semi-supervised GMVAE classifier (Arias Figueroa): many images, few labels.

    ``fit(X, y)`` takes images ``X`` and labels ``y`` where ``-1`` marks an unlabeled
    row (the ``sklearn.semi_supervised`` convention); ``y`` all ``-1`` (or ``None``)
    clusters into ``n_classes`` groups, with the auxiliary losses switched off.
    ``X`` is uint8 (0..255) or float in [0, 1], shaped (N, H, W), (N, H, W, C) or (N, D);
    square 28x28 and 32x32 images get the paper's conv networks, anything else an MLP
    (``network="auto"``). A ``validation_fraction`` of the rows is held out to pick the
    best epoch: of the unlabeled rows, and of the labeled rows of each class that has at
    least 10 (fewer are all needed for training). The best epoch has the highest
    validation accuracy, ties broken by the lower label-free validation loss (the loss
    alone when no labeled row was held out).

    Parameters
    ----------
    n_classes : int or None
        Number of categories; taken from the labels when there are any, required when
        ``y`` is all -1.
    network : {"auto", "conv", "mlp"}
    feature_size, latent_size, hidden_size : int
        fsz (features x_hat), gsz (latent z), and the MLP's hidden width.
    prior : {"mixture", "standard"}
        The paper's learned p(z|y), or N(0, I).
    reconstruction : {"mse", "bce"}
    reconstruction_reduction : {"sum", "mean"}
        Sum L_R over pixels (the ELBO's scale) or average it (the paper's "mean square
        error"): ``mean`` was much better on MNIST-100, worse on Fashion-100
        (docs/RESULTS.md).
    w_gaussian, w_categorical, w_assignment, w_metric : float
        Loss weights (paper Eq. 7); 0 switches a term off.
    knn_k, metric_margin : int, float
        k of the k-NN assignment, margin of the lifted structured loss.
    pseudo_label_warmup : float
        Epochs over which the terms that trust k-NN labels ramp in from 0 (0: the
        paper's constant weights; ``configs/mnist-100.yaml`` uses 1, docs/RESULTS.md).
    align_assignments : bool
        Correct the k-NN assignment for the classes it keeps over-assigning
        (distribution alignment; False: the paper's vote; ``configs/mnist-100.yaml``
        uses True, docs/RESULTS.md).
    temperature_start, temperature_end : float
        Gumbel-Softmax temperature, annealed over ``temperature_epochs`` (default: a
        quarter of ``max_epochs``, as the paper's 50 of 200).
    lr, max_epochs : float, int
        Adam learning rate, training epochs.
    ema_decay : float
        Validate, select and keep an exponential moving average of the weights with
        this decay (0: the trained weights, as in the paper; ``configs/mnist-100.yaml``
        uses 0.99, docs/RESULTS.md).
    batch_size, labeled_batch_size : int
        Unlabeled rows per batch, and labeled rows added to each (default: as many as
        ``batch_size``, at most the number of labeled training rows).
    eval_batch_size : int
        Batch size of validation and prediction.
    validation_fraction : float
        Share of rows held out for model selection; 0 keeps the last epoch.
    random_state : int, RandomState or None
        Seeds the split, the initial weights and the batches.
    accelerator : str
        Lightning accelerator: "auto", "cpu", "gpu", ...
    threads : "auto" or int
        CPU threads for training: "auto" times the steps and keeps the fastest count
        (the count changes the rounding: repeated fits match bit for bit only with a
        fixed count, or with ``OMP_NUM_THREADS`` set); an int fixes it
        (:class:`gmvae.training.threads.ThreadTuner`). The count is restored after ``fit``.
    log_dir : str or None
        When set, Lightning writes ``metrics.csv`` there (every loss term, validation
        metrics, temperature, learning rate).
    verbose : bool
        Show Lightning's progress bar and messages.

    Attributes
    ----------
    classes_ : ndarray
        The labels, in the order of ``predict_proba``'s columns.
    model_ : GMVAE
        The trained network (eval mode).
    best_epoch_ : int or None
        The epoch whose weights were kept.
    history_ : list of dict
        Per-epoch ``train/*`` and ``val/*`` metrics.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from gmvae.api import GMVAEClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16.0                   # (1797, 64) in [0, 1]
    >>> y_few = y.copy()
    >>> y_few[100:] = -1               # keep 100 labels, hide the rest
    >>> clf = GMVAEClassifier(max_epochs=3, random_state=0).fit(X[:1400], y_few[:1400])
    >>> clf.classes_
    array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    >>> clf.predict_proba(X[1400:1403]).shape
    (3, 10)
    >>> clf.score(X[1400:], y[1400:]) > 0.5
    True
    >>> clf.sample(4, category=7).shape
    (4, 64)
    """

    def __init__(
        self,
        *,
        n_classes: int | None = None,
        network: str = "auto",
        feature_size: int = 100,
        latent_size: int = 100,
        hidden_size: int = 512,
        prior: str = "mixture",
        reconstruction: str = "mse",
        reconstruction_reduction: str = "sum",
        w_gaussian: float = 1.0,
        w_categorical: float = 1.0,
        w_assignment: float = 1.0,
        w_metric: float = 1.0,
        knn_k: int = 5,
        metric_margin: float = 2.0,
        pseudo_label_warmup: float = 0.0,
        align_assignments: bool = False,
        temperature_start: float = 1.0,
        temperature_end: float = 0.5,
        temperature_epochs: float | None = None,
        lr: float = 1e-3,
        ema_decay: float = 0.0,
        max_epochs: int = 50,
        batch_size: int = 100,
        labeled_batch_size: int | None = None,
        eval_batch_size: int = 1000,
        validation_fraction: float = 0.2,
        random_state: int | np.random.RandomState | None = None,
        accelerator: str = "auto",
        threads: int | str = "auto",
        log_dir: str | None = None,
        verbose: bool = False,
    ) -> None:
        self.n_classes = n_classes
        self.network = network
        self.feature_size = feature_size
        self.latent_size = latent_size
        self.hidden_size = hidden_size
        self.prior = prior
        self.reconstruction = reconstruction
        self.reconstruction_reduction = reconstruction_reduction
        self.w_gaussian = w_gaussian
        self.w_categorical = w_categorical
        self.w_assignment = w_assignment
        self.w_metric = w_metric
        self.knn_k = knn_k
        self.metric_margin = metric_margin
        self.pseudo_label_warmup = pseudo_label_warmup
        self.align_assignments = align_assignments
        self.temperature_start = temperature_start
        self.temperature_end = temperature_end
        self.temperature_epochs = temperature_epochs
        self.lr = lr
        self.ema_decay = ema_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.labeled_batch_size = labeled_batch_size
        self.eval_batch_size = eval_batch_size
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.accelerator = accelerator
        self.threads = threads
        self.log_dir = log_dir
        self.verbose = verbose

    # ---- fitting -------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> GMVAEClassifier:
        """Train on images ``X`` with labels ``y`` (-1: unlabeled; None: all unlabeled)."""
        threads = ThreadTuner(self.threads)  # a bad count fails before any work
        images = to_images(X)
        row_shape = tuple(np.shape(X)[1:])
        y_enc, classes = self._encode_labels(y, len(images))
        clustering = not (y_enc >= 0).any()
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        if self.validation_fraction:
            train_idx, val_idx = holdout_split(
                y_enc, self.validation_fraction, seed, min_per_class=MIN_LABELED_FOR_VALIDATION
            )
        else:
            train_idx, val_idx = np.arange(len(y_enc)), np.empty(0, dtype=np.int64)
        if clustering and len(train_idx) % self.batch_size == 1:
            # The sampler's last batch would hold one row, which BatchNorm cannot train on.
            val_idx = np.append(val_idx, train_idx[-1])
            train_idx = train_idx[:-1]
        labels = torch.from_numpy(y_enc)
        train = ImageArrays(images[train_idx], labels[train_idx], "X (train part)")
        val = ImageArrays(images[val_idx], labels[val_idx], "X (validation part)")
        n_labeled = int((train.labels >= 0).sum())
        if clustering:
            m = 0
        elif self.labeled_batch_size is None:
            m = min(self.batch_size, n_labeled)
        else:
            m = self.labeled_batch_size

        network = NetworkConfig(
            network=self.network,
            feature_size=self.feature_size,
            latent_size=self.latent_size,
            mlp_hidden_size=self.hidden_size,
            prior=self.prior,
        )
        loss = LossConfig(
            reconstruction=self.reconstruction,
            reconstruction_reduction=self.reconstruction_reduction,
            w_gaussian=self.w_gaussian,
            w_categorical=self.w_categorical,
            w_assignment=0.0 if clustering else self.w_assignment,
            w_metric=0.0 if clustering else self.w_metric,
            knn_k=self.knn_k,
            metric_margin=self.metric_margin,
            pseudo_label_warmup=self.pseudo_label_warmup,
            align_assignments=self.align_assignments,
        )
        anneal = self.temperature_epochs
        temperature = TemperatureConfig(
            start=self.temperature_start,
            end=self.temperature_end,
            epochs=self.max_epochs / 4 if anneal is None else anneal,
        )
        data = ArrayDataModule(
            train,
            val,
            tuple(str(c) for c in classes),
            unlabeled_batch_size=self.batch_size,
            labeled_batch_size=m,
            eval_batch_size=self.eval_batch_size,
            seed=seed,
        )
        selector = BestWeights(use_accuracy=bool((val.labels >= 0).any()))
        callbacks: list[L.Callback] = [selector, threads]
        logger: CSVLogger | bool = False
        if self.log_dir is not None:
            logger = CSVLogger(self.log_dir, name="", version="")
        with torch.random.fork_rng(devices=[]), _quiet(self.verbose):
            torch.manual_seed(seed)
            module = GMVAEModule(
                images.shape[1:],
                len(classes),
                network,
                loss,
                temperature,
                self.lr,
                ema_decay=self.ema_decay,
            )
            trainer = L.Trainer(
                max_epochs=self.max_epochs,
                accelerator=self.accelerator,
                devices=1,
                logger=logger,
                callbacks=callbacks,
                enable_checkpointing=False,
                enable_progress_bar=self.verbose,
                enable_model_summary=self.verbose,
                num_sanity_val_steps=0,
                use_distributed_sampler=False,
                default_root_dir=self.log_dir or os.getcwd(),
            )
            trainer.fit(module, datamodule=data)
        if selector.state is not None:
            module.load_state_dict(selector.state)
        self.model_ = module.model.cpu().eval()
        self.classes_ = classes
        self.class_names_ = tuple(str(c) for c in classes)
        self.image_shape_ = tuple(images.shape[1:])
        self.input_shape_ = row_shape
        self.best_epoch_ = selector.best_epoch
        self.history_ = selector.history
        return self

    def _encode_labels(self, y: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Labels as 0..c-1 (-1 kept) and the sorted original labels ``classes_``."""
        if y is None:
            y = np.full(n, -1)
        y = np.asarray(y)
        if y.shape != (n,):
            raise DataError(f"y: expected shape ({n},) to match X, got {y.shape}")
        if y.dtype.kind not in "iuf" or (y.dtype.kind == "f" and not np.all(y == np.round(y))):
            raise DataError(f"y: labels must be integers with -1 for unlabeled rows, got {y.dtype}")
        labeled = y != -1
        classes = np.unique(y[labeled])
        if not len(classes):
            if not self.n_classes or self.n_classes < 2:
                raise ConfigError("y has no labels (all -1): set n_classes (>= 2) to cluster")
            return np.full(n, -1, dtype=np.int64), np.arange(self.n_classes)
        if self.n_classes is not None and self.n_classes != len(classes):
            raise ConfigError(
                f"n_classes={self.n_classes} but y holds {len(classes)} classes: {classes.tolist()}"
            )
        if len(classes) < 2:
            raise DataError(
                f"y: labeled rows must cover at least 2 classes, got {classes.tolist()}"
            )
        encoded = np.full(n, -1, dtype=np.int64)
        encoded[labeled] = np.searchsorted(classes, y[labeled])
        return encoded, classes

    # ---- inference -----------------------------------------------------------------

    def _batches(self, X: Any) -> Iterator[torch.Tensor]:
        check_is_fitted(self)
        images = to_images(X, self.image_shape_)
        device = next(self.model_.parameters()).device
        for start in range(0, len(images), self.eval_batch_size):
            yield to_float(images[start : start + self.eval_batch_size]).to(device)

    @torch.inference_mode()
    def predict_proba(self, X: Any) -> np.ndarray:
        """q(y|x) for every row, (N, n_classes), columns in the order of ``classes_``."""
        out = [torch.softmax(self.model_.classify(x), dim=-1).cpu() for x in self._batches(X)]
        return torch.cat(out).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of every row (argmax of q(y|x)), as labels of ``classes_``."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    @torch.inference_mode()
    def transform(self, X: Any) -> np.ndarray:
        """The deterministic features x_hat = g(x), (N, feature_size)."""
        return torch.cat([self.model_.features(x).cpu() for x in self._batches(X)]).numpy()

    def suggest(
        self, X: Any, n: int, y: Any = None, *, random_state: int | None = None
    ) -> np.ndarray:
        """Indices into ``X`` of the ``n`` images whose labels would help most, best first.

        Typical images of the feature clusters that no label covers yet (the rule and its
        choices: :mod:`gmvae.suggest`). ``y`` (-1: unlabeled) marks the rows already
        labeled: they are never suggested and cover their clusters.
        """
        features = self.transform(X)
        labeled = None
        if y is not None:
            y = np.asarray(y)
            if y.shape != (len(features),):
                raise DataError(f"y: expected shape ({len(features)},) to match X, got {y.shape}")
            labeled = y != -1
        state = self.random_state if random_state is None else random_state
        seed = int(check_random_state(state).randint(np.iinfo(np.int32).max))
        return suggest_rows(features, n, labeled=labeled, seed=seed).indices

    def sample(
        self, n_samples: int, category: Any, *, random_state: int | None = None
    ) -> np.ndarray:
        """``n_samples`` images of ``category`` (a label of ``classes_``): z ~ p(z|y), decoded.

        Returned in the layout of the rows given to ``fit``, as floats in [0, 1].
        """
        check_is_fitted(self)
        matches = np.flatnonzero(self.classes_ == category)
        if not len(matches):
            raise ValueError(f"category={category!r} is not one of {self.classes_.tolist()}")
        generator = torch.Generator().manual_seed(
            int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
        )
        images = self.model_.cpu().sample(int(matches[0]), n_samples, generator=generator)
        return from_images(images, self.input_shape_)

    # ---- files ---------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path`` (.safetensors weights) and its ``.json`` config; no pickle involved."""
        check_is_fitted(self)
        params = {k: v for k, v in self.get_params().items() if _json_safe(v)}
        card = ModelCard(
            self.image_shape_,
            len(self.classes_),
            self.model_.config,
            self.class_names_,
            extra={
                "estimator": {
                    "params": params,
                    "classes": self.classes_.tolist(),
                    "input_shape": list(self.input_shape_),
                    "best_epoch": self.best_epoch_,
                }
            },
        )
        return save_model(path, self.model_, card)

    @classmethod
    def load(cls, path: str | os.PathLike) -> GMVAEClassifier:
        """A fitted classifier from a model file written by ``save`` or by ``gmvae fit``."""
        model, card = load_model(path)
        saved = card.extra.get("estimator", {})
        known = cls().get_params()
        params = {k: v for k, v in saved.get("params", {}).items() if k in known}
        if not saved:  # a `gmvae fit` model: rebuild the parameters its network implies
            params = {
                "n_classes": card.num_classes,
                "network": card.network.network,
                "feature_size": card.network.feature_size,
                "latent_size": card.network.latent_size,
                "hidden_size": card.network.mlp_hidden_size,
                "prior": card.network.prior,
            }
        est = cls(**params)
        est.model_ = model
        est.classes_ = np.asarray(saved.get("classes", list(range(card.num_classes))))
        est.class_names_ = card.class_names or tuple(str(c) for c in est.classes_)
        est.image_shape_ = tuple(card.image_shape)
        c, h, w = card.image_shape
        est.input_shape_ = tuple(saved.get("input_shape", (h, w) if c == 1 else (h, w, c)))
        est.best_epoch_ = saved.get("best_epoch")
        est.history_ = []
        return est


def _json_safe(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


@contextmanager
def _quiet(verbose: bool) -> Iterator[None]:
    """Hide Lightning's start-up messages and data loader hints unless ``verbose``."""
    if verbose:
        yield
        return
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for message in (
                ".*does not have many workers.*",
                ".*is smaller than the logging interval.*",
                ".*Total length of .* across ranks is zero.*",
                ".*`srun` command is available on your system.*",
            ):
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
