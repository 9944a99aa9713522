"""``GMVAEClassifier``: the semi-supervised GMVAE as a scikit-learn estimator.

Training runs on the Trainer of ``gmvae fit`` (:func:`gmvae.training.trainer.build_trainer`:
the same precision, NaN guard, random state and checkpoint IO) with the same module,
loaders and half-labeled batch sampler; model files are the same safetensors + JSON pair.
The model and loss options are the fields of :mod:`gmvae.config`'s dataclasses and the
options of :class:`gmvae.training.module.GMVAEModule`, under the same names.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.loggers import CSVLogger
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d

from gmvae.config import LossConfig, NetworkConfig, TemperatureConfig
from gmvae.data.arrays import ImageArrays, to_float
from gmvae.data.layout import from_images, to_images
from gmvae.data.scaling import InputScaling
from gmvae.data.split import holdout_split
from gmvae.data.suggest import suggest as suggest_rows
from gmvae.errors import ConfigError, DataError
from gmvae.io.model_file import ModelCard, load_model, save_model
from gmvae.training.datamodule import ArrayDataModule
from gmvae.training.module import GMVAEModule
from gmvae.training.selection import BestWeights
from gmvae.training.threads import check_threads
from gmvae.training.trainer import build_trainer, quiet_lightning

__all__ = ["GMVAEClassifier"]

# Labels are scarce: a class with fewer labeled rows keeps them all for training (holding
# out 1 of 5 cost 5-10 points of accuracy on the digits), and selection uses the loss.
MIN_LABELED_FOR_VALIDATION = 10


def _config_options(cls: type, prefix: str = "") -> dict[str, Any]:
    """A config dataclass's fields as estimator options: {prefix + name: default}.

    A mutable default (``metric_kwargs``'s dict) becomes None: scikit-learn parameters
    are plain values, and None stands for the dataclass's own default.
    """
    return {
        prefix + f.name: None if f.default is dataclasses.MISSING else f.default
        for f in dataclasses.fields(cls)
    }


def _module_options() -> dict[str, Any]:
    """GMVAEModule's own options (lr, ema_decay, channels_last, ...), with their defaults."""
    skip = {"self", "image_shape", "num_classes", "network", "loss", "temperature"}
    params = inspect.signature(GMVAEModule.__init__).parameters.values()
    return {p.name: p.default for p in params if p.name not in skip}


NETWORK_OPTIONS = _config_options(NetworkConfig)
LOSS_OPTIONS = _config_options(LossConfig)
# temperature_epochs None: a quarter of max_epochs, as the paper's 50 of 200.
TEMPERATURE_OPTIONS = {
    **_config_options(TemperatureConfig, "temperature_"),
    "temperature_epochs": None,
}
MODULE_OPTIONS = _module_options()
# The estimator's own options: the data, the batches, the Trainer.
ESTIMATOR_OPTIONS: dict[str, Any] = {
    "n_classes": None,
    "max_epochs": 50,
    "batch_size": 100,
    "labeled_batch_size": None,
    "eval_batch_size": 1000,
    "validation_fraction": 0.2,
    "scaling": "auto",
    "random_state": None,
    "accelerator": "auto",
    "precision": None,
    "threads": "auto",
    "log_dir": None,
    "verbose": False,
}
OPTIONS: dict[str, Any] = {}
for _group in (
    NETWORK_OPTIONS,
    LOSS_OPTIONS,
    TEMPERATURE_OPTIONS,
    MODULE_OPTIONS,
    ESTIMATOR_OPTIONS,
):
    _clash = set(OPTIONS) & set(_group)
    assert not _clash, f"estimator options defined twice: {_clash}"
    OPTIONS.update(_group)
# Renamed options, read from model files written before the rename.
_RENAMED = {"hidden_size": "mlp_hidden_size"}

# The checks of sklearn.utils.estimator_checks this estimator cannot meet, and why; see
# the class docstring ("scikit-learn conformance").
EXPECTED_FAILED_CHECKS: dict[str, str] = {
    "check_classifiers_classes": (
        "its last problem labels the classes -1 and 1, and -1 marks an unlabeled row (the "
        "sklearn.semi_supervised convention): one class is left; scikit-learn exempts its own "
        "semi-supervised estimators from that problem by name"
    ),
}


def _init(self: Any, **params: Any) -> None:
    unknown = sorted(set(params) - set(OPTIONS))
    if unknown:
        raise TypeError(f"GMVAEClassifier got unexpected option(s): {', '.join(unknown)}")
    for name, default in OPTIONS.items():
        setattr(self, name, params.get(name, default))


_init.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    + [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d) for n, d in OPTIONS.items()]
)
_init.__doc__ = "Store the options (keyword-only, see the class docstring); nothing else."


class GMVAEClassifier(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClassifierMixin, BaseEstimator
):
    """Semi-supervised GMVAE classifier (Arias Figueroa): many images, few labels.

    ``fit(X, y)`` takes images ``X`` and labels ``y`` where ``-1`` marks an unlabeled
    row (the ``sklearn.semi_supervised`` convention; labels that are strings are all
    labeled); ``y`` all ``-1`` (or ``None``) clusters into ``n_classes`` groups, with the
    auxiliary losses switched off. ``X`` is shaped (N, H, W), (N, H, W, C) or (N, D):
    uint8 is read as 0..255, floats in [0, 1] as they are, and other numbers are scaled to
    [0, 1] by the range learned at ``fit`` (``scaling``). Square 28x28 and 32x32 images get
    the paper's conv networks, anything else an MLP (``network="auto"``). A
    ``validation_fraction`` of the rows is held out to pick the best epoch: of the
    unlabeled rows, and of the labeled rows of each class that has at least 10 (fewer are
    all needed for training). The best epoch has the highest validation accuracy, ties
    broken by the lower label-free validation loss (the loss alone when no labeled row was
    held out). Training is that of ``gmvae fit``: the same Trainer, precision and guards.

    Parameters
    ----------
    Every parameter is keyword-only. The model and the loss take the fields of
    :mod:`gmvae.config`, under their names and with their defaults (see each class):

    network, feature_size, latent_size, mlp_hidden_size, prior, init
        :class:`gmvae.config.NetworkConfig`.
    reconstruction, reconstruction_reduction, w_reconstruction, w_gaussian, \
w_categorical, w_assignment, w_metric, knn_k, metric, metric_margin, metric_kwargs, \
labeled_generative, pseudo_label_warmup, label_start, align_assignments, pseudo_labels
        :class:`gmvae.config.LossConfig` (``metric_kwargs=None``: no keyword arguments).
        The loss weights are those of paper Eq. 7; 0 switches a term off.
    temperature_start, temperature_end, temperature_epochs, temperature_hard
        :class:`gmvae.config.TemperatureConfig` (the Gumbel-Softmax temperature);
        ``temperature_epochs=None`` anneals over a quarter of ``max_epochs``, as the
        paper's 50 of 200.
    lr, channels_last, compile, fast_kernels, ema_decay, init_encoder, augment_shift
        :class:`gmvae.training.module.GMVAEModule`: Adam's learning rate, the memory
        layout, ``torch.compile``, the fast kernels, the evaluated weight average, a
        saved model whose encoder to start from, random shifts of the training images.

    The estimator's own:

    n_classes : int or None
        Number of categories; taken from the labels when there are any, required when
        ``y`` is all -1.
    max_epochs : int
        Training epochs.
    batch_size, labeled_batch_size : int
        Unlabeled rows per batch, and labeled rows added to each (default: as many as
        ``batch_size``, at most the number of labeled training rows).
    eval_batch_size : int
        Batch size of validation and prediction.
    validation_fraction : float
        Share of rows held out for model selection; 0 keeps the last epoch.
    scaling : {"auto", "global", "feature", "none"}
        How ``X`` is mapped onto the [0, 1] the decoder models (:mod:`gmvae.data.scaling`):
        ``auto`` leaves uint8 and values in [0, 1] as they are and scales anything else
        by the global minimum and maximum seen at ``fit`` (``global``); ``feature`` scales
        each feature by its own range; ``none`` refuses values outside [0, 1]. Later
        data is clipped to the learned range; ``sample`` returns the input's units.
    random_state : int, RandomState or None
        Seeds the split, the initial weights and the batches.
    accelerator : str
        Lightning accelerator: "auto", "cpu", "gpu", ...
    precision : str or None
        Lightning precision; None: the fastest that keeps the accuracy on this machine,
        as ``gmvae fit`` picks it (bf16 autocast where it is native, else fp32).
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
    n_features_in_ : int
        Values per row of ``X`` (H * W * C for images).
    scaling_ : InputScaling or None
        The range learned at ``fit`` (None: ``X`` needed no scaling).
    best_epoch_ : int or None
        The epoch whose weights were kept.
    history_ : list of dict
        Per-epoch ``train/*`` and ``val/*`` metrics.

    Notes
    -----
    scikit-learn conformance: the estimator passes
    ``sklearn.utils.estimator_checks.check_estimator`` (``tests/test_sklearn_checks.py``
    runs it with a small network and few epochs). ``transform`` gives the features
    x_hat, so the estimator is also a transformer (float32 out, whatever the input).
    Labels are encoded as given; ``-1`` marks unlabeled rows, so a classifier with the
    class ``-1`` cannot be trained. The checks it cannot meet are in
    ``EXPECTED_FAILED_CHECKS``, each with its reason.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from gmvae import GMVAEClassifier
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

    __init__ = _init

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True  # images (N, H, W) and (N, H, W, C)
        tags.transformer_tags.preserves_dtype = ["float32"]  # features are float32
        return tags

    # ---- fitting -------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> GMVAEClassifier:
        """Train on images ``X`` with labels ``y`` (-1: unlabeled; None: all unlabeled)."""
        check_threads(self.threads)  # a bad count fails before any work
        X = _check_X(X)
        scaling = InputScaling.fit(X, self.scaling)
        images = to_images(X if scaling is None else scaling.transform(X))
        row_shape = tuple(X.shape[1:])
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

        network, loss, temperature = self._configs(clustering)
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
        logger: CSVLogger | bool = False
        if self.log_dir is not None:
            logger = CSVLogger(self.log_dir, name="", version="")
        options = {} if self.precision is None else {"precision": self.precision}
        if not len(val_idx):  # nothing held out (a few labels per class): keep the last epoch
            options["limit_val_batches"] = 0
        with torch.random.fork_rng(devices=[]), quiet_lightning(self.verbose):
            torch.manual_seed(seed)
            module = GMVAEModule(
                images.shape[1:],
                len(classes),
                network,
                loss,
                temperature,
                **{name: getattr(self, name) for name in MODULE_OPTIONS},
            )
            trainer = build_trainer(
                max_epochs=self.max_epochs,
                accelerator=self.accelerator,
                devices=1,
                logger=logger,
                callbacks=[selector],
                threads=self.threads,
                enable_checkpointing=False,  # the best weights are kept in memory
                enable_progress_bar=self.verbose,
                enable_model_summary=self.verbose,
                num_sanity_val_steps=0,
                default_root_dir=self.log_dir or os.getcwd(),
                **options,
            )
            trainer.fit(module, datamodule=data)
        if selector.state is not None:
            module.load_state_dict(selector.state)
        self.model_ = module.model.cpu().eval()
        self.classes_ = classes
        self.class_names_ = tuple(str(c) for c in classes)
        self.image_shape_ = tuple(images.shape[1:])
        self.input_shape_ = row_shape
        self.n_features_in_ = math.prod(row_shape)
        self.scaling_ = scaling
        self.best_epoch_ = selector.best_epoch
        self.history_ = selector.history
        return self

    def _configs(self, clustering: bool) -> tuple[NetworkConfig, LossConfig, TemperatureConfig]:
        """The three configs from the options of the same names (validated by the configs)."""
        network = NetworkConfig(**{name: getattr(self, name) for name in NETWORK_OPTIONS})
        loss = {name: getattr(self, name) for name in LOSS_OPTIONS}
        loss["metric_kwargs"] = dict(loss["metric_kwargs"] or {})
        if clustering:  # no labels: the auxiliary terms have nothing to learn from
            loss["w_assignment"] = loss["w_metric"] = 0.0
        temperature = {
            name.removeprefix("temperature_"): getattr(self, name) for name in TEMPERATURE_OPTIONS
        }
        if temperature["epochs"] is None:
            temperature["epochs"] = self.max_epochs / 4
        return network, LossConfig(**loss), TemperatureConfig(**temperature)

    def _encode_labels(self, y: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Labels as 0..c-1 (-1 kept) and the sorted original labels ``classes_``."""
        given = y
        if y is None:
            y = np.full(n, -1)
        y = column_or_1d(y, warn=True)  # a column vector warns, as scikit-learn's do
        if y.shape != (n,):
            raise ConfigError(f"y: expected shape ({n},) to match X, got {y.shape}")
        y = check_array(y, ensure_2d=False, dtype=None, input_name="y")  # NaN, inf
        try:
            check_classification_targets(y)
        except ValueError as exc:
            raise ConfigError(
                f"y: labels must be integers (or strings) with -1 for unlabeled rows; {exc}"
            ) from None
        labeled = y != -1 if y.dtype.kind in "iufb" else np.ones(n, dtype=bool)
        classes = np.unique(y[labeled])
        if not len(classes):
            if given is None and not self.n_classes:
                raise ConfigError(
                    f"{type(self).__name__} requires y to be passed, but the target y is None: "
                    "give labels (-1 for unlabeled rows), or set n_classes (>= 2) to cluster"
                )
            if not self.n_classes or self.n_classes < 2:
                raise ConfigError("y has no labels (all -1): set n_classes (>= 2) to cluster")
            return np.full(n, -1, dtype=np.int64), np.arange(self.n_classes)
        if self.n_classes is not None and self.n_classes != len(classes):
            raise ConfigError(
                f"n_classes={self.n_classes} but y holds {len(classes)} classes: {classes.tolist()}"
            )
        if len(classes) < 2:
            raise ConfigError(
                f"y: labeled rows must cover at least 2 classes, got 1 class: {classes.tolist()}"
            )
        encoded = np.full(n, -1, dtype=np.int64)
        encoded[labeled] = np.searchsorted(classes, y[labeled])
        return encoded, classes

    # ---- inference -----------------------------------------------------------------

    def _images(self, X: Any) -> torch.Tensor:
        """``X`` checked against the fitted rows, scaled as at ``fit``, as model images."""
        check_is_fitted(self)
        X = _check_X(X)
        if X.ndim == 2 and X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input"
            )
        if self.scaling_ is not None:
            X = self.scaling_.transform(X)
        return to_images(X, self.image_shape_)

    def _batches(self, X: Any) -> Iterator[torch.Tensor]:
        images = self._images(X)
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
        """The deterministic features x_hat = g(x), (N, feature_size), float32."""
        return torch.cat([self.model_.features(x).cpu() for x in self._batches(X)]).numpy()

    def suggest(
        self, X: Any, n: int, y: Any = None, *, random_state: int | None = None
    ) -> np.ndarray:
        """Indices into ``X`` of the ``n`` images whose labels would help most, best first.

        Typical images of the feature clusters that no label covers yet (the rule and its
        choices: :mod:`gmvae.data.suggest`). ``y`` (-1: unlabeled) marks the rows already
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

    @property
    def _n_features_out(self) -> int:
        """Columns of ``transform`` (for ``get_feature_names_out``)."""
        return self.model_.config.feature_size

    def sample(
        self, n_samples: int, category: Any, *, random_state: int | None = None
    ) -> np.ndarray:
        """``n_samples`` images of ``category`` (a label of ``classes_``): z ~ p(z|y), decoded.

        Returned in the layout of the rows given to ``fit``, in their units: floats in
        [0, 1], or mapped back through the scaling learned at ``fit``.
        """
        check_is_fitted(self)
        matches = np.flatnonzero(self.classes_ == category)
        if not len(matches):
            raise ValueError(f"category={category!r} is not one of {self.classes_.tolist()}")
        generator = torch.Generator().manual_seed(
            int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
        )
        images = self.model_.cpu().sample(int(matches[0]), n_samples, generator=generator)
        rows = from_images(images, self.input_shape_)
        return rows if self.scaling_ is None else self.scaling_.inverse_transform(rows)

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
                    "scaling": None if self.scaling_ is None else self.scaling_.to_json(),
                }
            },
        )
        return save_model(path, self.model_, card)

    @classmethod
    def load(cls, path: str | os.PathLike) -> GMVAEClassifier:
        """A fitted classifier from a model file written by ``save`` or by ``gmvae fit``."""
        model, card = load_model(path)
        saved = card.extra.get("estimator", {})
        params = {_RENAMED.get(k, k): v for k, v in saved.get("params", {}).items()}
        params = {k: v for k, v in params.items() if k in OPTIONS}
        if not saved:  # a `gmvae fit` model: the parameters its network implies
            params = {"n_classes": card.num_classes, **dataclasses.asdict(card.network)}
        est = cls(**params)
        est.model_ = model
        est.classes_ = np.asarray(saved.get("classes", list(range(card.num_classes))))
        est.class_names_ = card.class_names or tuple(str(c) for c in est.classes_)
        est.image_shape_ = tuple(card.image_shape)
        c, h, w = card.image_shape
        est.input_shape_ = tuple(saved.get("input_shape", (h, w) if c == 1 else (h, w, c)))
        est.n_features_in_ = math.prod(est.input_shape_)
        est.scaling_ = InputScaling.from_json(saved.get("scaling"))
        est.best_epoch_ = saved.get("best_epoch")
        est.history_ = []
        return est


def _check_X(X: Any) -> np.ndarray:
    """scikit-learn's checks of ``X`` (no sparse input, numbers, finite, not empty), any rank."""
    return check_array(X, accept_sparse=False, allow_nd=True, dtype="numeric")


def _json_safe(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))
