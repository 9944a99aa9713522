"""Frozen settings for the network, the loss and the Gumbel-Softmax schedule.

Defaults are the paper's MNIST values (Section 5.2); the configs in ``configs/`` set
the other experiments. Each class validates itself so that a bad value fails at
parse time with a message naming the option and the allowed values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gmvae.errors import ConfigError

NETWORKS = ("auto", "conv", "mlp")
RECONSTRUCTIONS = ("mse", "bce")
REDUCTIONS = ("sum", "mean")
PRIORS = ("mixture", "standard")
INITS = ("default", "xavier")
PSEUDO_LABELS = ("knn", "propagation", "epoch_propagation")


def _check_choice(option: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{option}={value!r} is not allowed; choose one of {', '.join(allowed)}")


def _check_positive(option: str, value: float, *, allow_zero: bool = False) -> None:
    if value != value or value < 0 or (value == 0 and not allow_zero):  # value != value: NaN
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{option}={value!r} must be {bound}")


@dataclass(frozen=True)
class NetworkConfig:
    """Sizes of the networks (paper Appendix A).

    ``network``: ``conv`` (28x28 or 32x32 images), ``mlp`` (any shape, flattened)
    or ``auto`` (conv where the image size has a conv stack, else mlp).
    ``prior``: ``mixture`` is the paper's learned p(z|y); ``standard`` uses N(0, I).
    ``init``: ``default`` keeps PyTorch's layer initialisation; ``xavier`` draws every
    linear and conv weight Xavier-normal with zero biases, as the author's code does (the
    paper does not say).
    """

    network: str = "auto"
    feature_size: int = 100
    latent_size: int = 100
    mlp_hidden_size: int = 512
    prior: str = "mixture"
    init: str = "default"

    def __post_init__(self) -> None:
        _check_choice("network", self.network, NETWORKS)
        _check_choice("prior", self.prior, PRIORS)
        _check_choice("init", self.init, INITS)
        for name in ("feature_size", "latent_size", "mlp_hidden_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r} must be a positive integer")


@dataclass(frozen=True)
class LossConfig:
    """Weights and settings of L_total = wR*L_R + wG*L_G + wC*L_C + wA*L_A + wM*L_M.

    A weight of 0 switches its term off (it is then neither computed nor logged).
    ``labeled_generative: false`` computes L_R and L_G on the unlabeled rows only and
    skips q(z|x_hat,y), p(z|y) and the decoder for the labeled rows, which in small
    labeled sets are the same images in every batch (faster; changes the objective,
    see docs/PERFORMANCE.md for its measured effect).
    ``metric`` is ``lifted`` (our O(B^2) lifted structured loss, margin
    ``metric_margin``) or the class name of any pytorch-metric-learning loss,
    built with ``metric_kwargs``.
    ``reconstruction_reduction``: ``sum`` adds L_R over pixels (the log-likelihood
    scale of the ELBO); ``mean`` averages it, as the paper's "mean square error" and
    the author's code (``tf.losses.mean_squared_error``) do, which makes L_R 1/D as
    heavy against the other terms (D pixels; docs/RESULTS.md measures the effect).
    ``pseudo_label_warmup``: epochs over which the terms that trust the k-NN labels
    (L_A on unlabeled rows, and L_M) ramp linearly from 0 to full weight, so that
    early features, still poor, do not lock wrong labels in; 0 is the paper's
    constant weights.
    ``label_start``: epochs of the variational terms alone before any label term (L_A,
    L_M) starts, so that the features first take the data's own structure; the
    warm-up ramp begins after it. 0 is the paper's schedule.
    ``align_assignments``: correct the k-NN assignment for the classes it keeps
    over-assigning (distribution alignment, :class:`gmvae.losses.AlignedAssignment`);
    false is the paper's plain vote.

    ``pseudo_labels``: how unlabeled rows get their L_A / L_M targets. ``knn`` is the
    paper's distance-weighted vote of the nearest labeled rows (Eq. 8); ``propagation``
    propagates the labels over a k-NN graph of the batch and a queue of recent unlabeled
    features (:mod:`gmvae.losses.propagation`), so that targets follow chains of
    unlabeled neighbours (not in the paper). ``epoch_propagation`` propagates them once
    per epoch over every training row, from the features at the epoch's start, and keeps
    those targets for the epoch (:mod:`gmvae.training.epoch_targets`; not in the paper);
    it needs ``label_start`` >= 1, so that its first targets come from trained features.
    """

    reconstruction: str = "mse"
    reconstruction_reduction: str = "sum"
    w_reconstruction: float = 1.0
    w_gaussian: float = 1.0
    w_categorical: float = 1.0
    w_assignment: float = 1.0
    w_metric: float = 1.0
    knn_k: int = 5
    metric: str = "lifted"
    metric_margin: float = 2.0
    metric_kwargs: dict[str, Any] = field(default_factory=dict)
    labeled_generative: bool = True
    pseudo_label_warmup: float = 0.0
    label_start: float = 0.0
    align_assignments: bool = False
    pseudo_labels: str = "knn"

    def __post_init__(self) -> None:
        _check_choice("reconstruction", self.reconstruction, RECONSTRUCTIONS)
        _check_choice("reconstruction_reduction", self.reconstruction_reduction, REDUCTIONS)
        _check_choice("pseudo_labels", self.pseudo_labels, PSEUDO_LABELS)
        _check_positive("pseudo_label_warmup", self.pseudo_label_warmup, allow_zero=True)
        _check_positive("label_start", self.label_start, allow_zero=True)
        for name in ("w_reconstruction", "w_gaussian", "w_categorical", "w_assignment", "w_metric"):
            _check_positive(name, getattr(self, name), allow_zero=True)
        if not isinstance(self.knn_k, int) or self.knn_k < 1:
            raise ConfigError(f"knn_k={self.knn_k!r} must be a positive integer")
        _check_positive("metric_margin", self.metric_margin)
        if not isinstance(self.align_assignments, bool):
            raise ConfigError(f"align_assignments={self.align_assignments!r} must be true or false")
        if self.align_assignments and self.pseudo_labels != "knn":
            raise ConfigError(
                f"align_assignments corrects the k-NN vote; it cannot be combined with "
                f"pseudo_labels={self.pseudo_labels!r}"
            )
        if self.pseudo_labels == "epoch_propagation" and self.label_start < 1:
            raise ConfigError(
                f"pseudo_labels='epoch_propagation' needs label_start >= 1 (got "
                f"{self.label_start}): its targets come from the features at an epoch's start, "
                "and before the first epoch they are untrained"
            )
        if not self.metric:
            raise ConfigError("metric must name a loss: 'lifted' or a pytorch-metric-learning loss")

    @property
    def uses_labels(self) -> bool:
        """Whether any term needs labeled rows in the batch."""
        return self.w_assignment > 0 or self.w_metric > 0


@dataclass(frozen=True)
class TemperatureConfig:
    """Gumbel-Softmax temperature: geometric from ``start`` to ``end`` over ``epochs``, then flat."""

    start: float = 1.0
    end: float = 0.5
    epochs: float = 50.0
    hard: bool = False

    def __post_init__(self) -> None:
        _check_positive("temperature.start", self.start)
        _check_positive("temperature.end", self.end)
        _check_positive("temperature.epochs", self.epochs, allow_zero=True)


C = TypeVar("C")


def coerce(cls: type[C], value: C | dict[str, Any] | None) -> C:
    """Accept a config object, a plain dict (as stored in checkpoints) or None (defaults)."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigError(
                f"unknown {cls.__name__} option(s): {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        return cls(**value)
    raise ConfigError(f"expected {cls.__name__} or a mapping, got {type(value).__name__}")


@dataclass(frozen=True)
class FolderConfig:
    """How a folder of image files becomes arrays (``dataset: folder``, docs/DATA.md).

    ``image_size``: every image is resized to ``image_size x image_size`` (aspect ratio
    not kept). ``channels``: 1 (grey) or 3 (RGB); transparent pixels become black.
    ``labels_file``: a CSV of ``filename,label`` rows labeling images that are not in a
    class sub-folder; default ``labels.csv`` in the folder when it exists.
    ``test_fraction``: without a ``test/`` sub-folder, this share of the labeled images
    (stratified, fixed) is the test set. ``cache_dir``: where the decoded arrays are
    cached; default the user cache (``$XDG_CACHE_HOME/gmvae/folders``).
    """

    image_size: int = 28
    channels: int = 1
    labels_file: str | None = None
    test_fraction: float = 0.2
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.image_size, int) or self.image_size < 1:
            raise ConfigError(f"folder.image_size={self.image_size!r} must be a positive integer")
        if self.channels not in (1, 3):
            raise ConfigError(f"folder.channels={self.channels!r} is not allowed; choose 1 or 3")
        if not 0 <= self.test_fraction < 1:
            raise ConfigError(f"folder.test_fraction={self.test_fraction!r} must lie in [0, 1)")
