"""The one way gmvae builds a Lightning Trainer: ``gmvae fit``, ``gmvae tune``, the estimator
and the benchmarks all train with these defaults, callbacks and checkpoint IO.

What every run gets, and why:

- the fastest precision that keeps the accuracy on the machine found
  (:func:`gmvae.training.precision.fastest_precision`: bf16 autocast where it is native);
- checkpoints written atomically and read without unpickling
  (:class:`gmvae.io.checkpoint.SafeCheckpointIO`), unless a CheckpointIO is given;
- the training time (``Timer``, which also ends training at ``max_time``), the random
  state in every checkpoint (:class:`gmvae.runs.rng_state.RNGState`), a stop with a
  clear error at the first NaN or Inf loss (:class:`gmvae.runs.guard.NonFiniteLossGuard`)
  and the CPU thread count (:class:`gmvae.training.threads.ThreadTuner`);
- Lightning's distributed sampler off: the half-labeled batch sampler shards by rank itself;
- an option the Trainer refuses as one :class:`gmvae.errors.ConfigError` naming it
  (:mod:`gmvae.training.trainer_options`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
from lightning.fabric.plugins import CheckpointIO

from gmvae.io.checkpoint import SafeCheckpointIO
from gmvae.runs.guard import NonFiniteLossGuard
from gmvae.runs.rng_state import RNGState
from gmvae.training.precision import fastest_precision
from gmvae.training.threads import AUTO, ThreadTuner
from gmvae.training.trainer_options import timer, trainer_option_errors

# Epochs of `gmvae fit` unless the config says otherwise (the paper's 200, Section 5.2).
MAX_EPOCHS = 200


def trainer_defaults() -> dict[str, Any]:
    """Trainer options under every run's own: what ``gmvae fit`` gets when a config is silent."""
    return {
        "use_distributed_sampler": False,  # our batch sampler shards by rank itself
        "max_epochs": MAX_EPOCHS,
        "precision": fastest_precision(),
        "benchmark": True,  # cudnn autotuner; no effect on CPU
    }


def default_callbacks(threads: int | str = AUTO, max_time: Any = None) -> list[L.Callback]:
    """The callbacks of every training run, after the run's own (see the module docstring).

    ``threads``: ``"auto"`` or a fixed CPU thread count (:class:`ThreadTuner`); a bad
    value raises :class:`gmvae.errors.ConfigError` here, before any work. ``max_time``:
    the Trainer's option, which Lightning ignores beside a Timer of ours: the Timer
    stops training there.
    """
    return [timer(max_time), RNGState(), NonFiniteLossGuard(), ThreadTuner(threads)]


def default_plugins(plugins: Any = None) -> list[Any]:
    """``plugins`` (one, a list or None) with the safe checkpoint IO, unless one is given."""
    given = (
        []
        if plugins is None
        else list(plugins)
        if isinstance(plugins, (list, tuple))
        else [plugins]
    )
    if any(isinstance(p, CheckpointIO) for p in given):
        return given
    return [*given, SafeCheckpointIO()]


def build_trainer(
    *, callbacks: Iterable[L.Callback] = (), threads: int | str = AUTO, **options: Any
) -> L.Trainer:
    """A Trainer as ``gmvae fit`` builds it: ``options`` over :func:`trainer_defaults`,
    ``callbacks`` then :func:`default_callbacks`, ``plugins`` with :func:`default_plugins`.

    An option the Trainer refuses raises :class:`gmvae.errors.ConfigError` naming it
    (``max_epochs: ...``).

    >>> build_trainer(max_epochs=1, logger=False, enable_progress_bar=False).max_epochs
    1
    """
    config = {**trainer_defaults(), **options}
    with trainer_option_errors(config, prefix=""):
        own = default_callbacks(threads, config.pop("max_time", None))
        config["plugins"] = default_plugins(config.get("plugins"))
        return L.Trainer(callbacks=[*callbacks, *own], **config)


@contextmanager
def quiet_lightning(verbose: bool = False) -> Iterator[None]:
    """Hide Lightning's start-up messages and small-data hints unless ``verbose``: they say
    nothing to a user of the estimator or of a command that trains a helper model."""
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
