"""A Trainer option Lightning cannot run with, as one :class:`ConfigError` naming the option.

Lightning checks most Trainer options as the Trainer is built, each refusal an exception
of its own type and wording (``MisconfigurationException``, ``ValueError``, ``TypeError``)
that names the option in its own way (``max_epochs``, ``Trainer(devices='0')``, or not at
all: "No supported gpu backend found!"). :func:`trainer_option_errors` turns any of them
into one error that starts with the option, before anything is written to a run
directory. A few options Lightning takes without a check and fails on later (a division
by zero once the run directory is written) or trains wrongly with (a negative
``accumulate_grad_batches`` steps the optimizer at the wrong batches), and the "true"
low or double precisions, which gmvae's model cannot train in, are checked here first
(:func:`check_trainer_options`).
"""

from __future__ import annotations

import inspect
import re
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Timer

from gmvae.errors import ConfigError, GMVAEError

# The options of Lightning's Trainer and their defaults, as its signature states them.
TRAINER_DEFAULTS: dict[str, Any] = {
    name: p.default
    for name, p in inspect.signature(L.Trainer.__init__).parameters.items()
    if name != "self"
}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# Precisions that cast the weights, not the batches: the model turns its uint8 images into
# float32 and draws its noise in float32, so the first layer meets weights of another type.
WEIGHT_CAST_PRECISIONS = ("16-true", "bf16-true", "64-true", "64", 64)

# Options Lightning 2.6 takes unchecked, or that gmvae cannot train with:
# name -> (is the value usable, what it must be).
UNCHECKED: dict[str, tuple[Callable[[Any], bool], str]] = {
    # `batch_idx % accumulate_grad_batches`: 0 divides by zero, a negative steps at odd batches
    "accumulate_grad_batches": (lambda v: _number(v) and v >= 1, "an integer >= 1"),
    # `(epoch + 1) % check_val_every_n_epoch`: 0 divides by zero once training has begun
    "check_val_every_n_epoch": (
        lambda v: v is None or (_number(v) and v >= 1),
        "an integer >= 1, or null to validate every val_check_interval batches",
    ),
    # an integer 0 is a validation every 0 batches: a division by zero in the first batch
    "val_check_interval": (
        lambda v: not _number(v) or v > 0,
        "> 0: a fraction of the epoch, a number of batches or a time",
    ),
    "precision": (
        lambda v: v not in WEIGHT_CAST_PRECISIONS,
        "32-true, bf16-mixed or 16-mixed: gmvae's model trains on float32 inputs",
    ),
}


def check_trainer_options(options: Mapping[str, Any], prefix: str = "--trainer.") -> None:
    """Raise :class:`ConfigError` for an option Lightning would take and then fail on.

    ``prefix`` is how the caller's user names the options (``--trainer.`` on the command
    line, nothing for the estimator's parameters).
    """
    for name, (usable, must) in UNCHECKED.items():
        if name in options and not usable(options[name]):
            raise ConfigError(f"{prefix}{name}={options[name]!r} must be {must}")
    max_time = options.get("max_time")
    if max_time is not None:
        timer(max_time, prefix)


def timer(max_time: str | timedelta | dict[str, int] | None, prefix: str = "--trainer.") -> Timer:
    """The Timer of a run, which stops training after ``max_time`` (DD:HH:MM:SS, a timedelta
    or a dict of its units); None: it only measures.

    Lightning ignores ``Trainer(max_time=...)`` when the callbacks already hold a Timer, as
    every gmvae run's do: this one takes the option over.
    """
    try:
        return Timer(duration=max_time, interval="step")
    except (MisconfigurationException, TypeError, ValueError) as exc:
        raise ConfigError(
            f"{prefix}max_time={max_time!r}: expected DD:HH:MM:SS (e.g. 00:12:00:00), "
            "a timedelta or a dict such as {hours: 12}"
        ) from exc


@contextmanager
def trainer_option_errors(options: Mapping[str, Any], prefix: str = "--trainer.") -> Iterator[None]:
    """Build a Trainer from ``options`` inside this block: an option it refuses raises
    :class:`ConfigError`, one line that names the option (the original is its cause)."""
    check_trainer_options(options, prefix)
    try:
        yield
    except GMVAEError:
        raise
    except (MisconfigurationException, TypeError, ValueError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        name = refused_option(message, options)
        where = f"{prefix}{name}" if name else "the Trainer refused its options"
        raise ConfigError(f"{where}: {message}") from exc


def late_refusal(exc: BaseException, prefix: str = "--trainer.") -> ConfigError | None:
    """A Trainer option Lightning refuses only once fit has begun, as one ConfigError.

    ``--trainer.val_check_interval 5000`` passes every check until Lightning's fit loop
    counts the epoch's batches (5000 > 15), after the run directory's config files are
    written. Only an error raised inside Lightning whose message names a Trainer option
    is taken; any other exception is left alone (None).
    """
    if not isinstance(exc, (MisconfigurationException, ValueError)) or exc.__traceback__ is None:
        return None
    raised_in = Path(traceback.extract_tb(exc.__traceback__)[-1].filename).parts
    if "lightning" not in raised_in:
        return None
    message = " ".join(str(exc).split())
    name = refused_option(message, {})
    return ConfigError(f"{prefix}{name}: {message}") if name else None


def refused_option(message: str, options: Mapping[str, Any]) -> str | None:
    """The Trainer option a refusal is about, or None.

    The first option the message names, one that was set (differs from the Trainer's
    default) before one that was not; else a set option whose value the message quotes
    ("No supported gpu backend found!" for ``accelerator='gpu'``).
    """
    given = [k for k in options if k in TRAINER_DEFAULTS and _differs(options[k], k)]
    named = sorted(
        (found.start(), name)
        for name in TRAINER_DEFAULTS
        if (found := re.search(rf"(?<![\w.]){name}(?!\w)", message))
    )
    for pool in ([n for _, n in named if n in given], [n for _, n in named]):
        if pool:
            return pool[0]
    quoted = [n for n in given if _number(options[n]) or isinstance(options[n], str)]
    return next((n for n in quoted if _mentions(message, str(options[n]))), None)


def _mentions(message: str, word: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(word)}(?!\w)", message) is not None


def _differs(value: Any, name: str) -> bool:
    try:
        return bool(value != TRAINER_DEFAULTS[name])
    except Exception:  # an object whose comparison fails is not the default
        return True
