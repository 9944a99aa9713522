"""A Trainer option Lightning refuses, or would take and then fail on, is one ConfigError
that names it; ``max_time`` stops training although every run has a Timer of its own."""

import pytest
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.demos.boring_classes import BoringModel

from gmvae.errors import ConfigError
from gmvae.training.trainer import build_trainer
from gmvae.training.trainer_options import late_refusal, refused_option

QUIET = dict(logger=False, enable_progress_bar=False, enable_model_summary=False)


@pytest.mark.parametrize(
    "message,options,expected",
    [
        # named, and set: the first such
        ("`max_epochs` must be a non-negative integer or -1.", {"max_epochs": -3}, "max_epochs"),
        (
            "`Trainer(devices='0')` value is not a valid input using cpu accelerator.",
            {"devices": 0, "accelerator": "auto"},
            "devices",
        ),
        # named twice: the one set wins over the one at its default
        (
            "`accelerator` does not take `devices=3`",
            {"devices": 3, "accelerator": "auto"},
            "devices",
        ),
        # named only in a dotted path: not it
        ("an instance of `lightning.pytorch.strategies.Strategy`", {"strategy": "x"}, None),
        # not named: the option whose value the message quotes
        ("No supported gpu backend found!", {"accelerator": "gpu", "max_epochs": 1}, "accelerator"),
        ("something broke", {"max_epochs": 1}, None),
    ],
)
def test_the_option_a_refusal_is_about(message, options, expected):
    assert refused_option(message, options) == expected


@pytest.mark.parametrize(
    "options,start",
    [
        ({"max_epochs": -3}, "max_epochs: `max_epochs` must be a non-negative integer"),
        ({"accelerator": "nonsense"}, "accelerator: You selected an invalid accelerator name"),
        ({"devices": 0}, "devices: `Trainer(devices=0)` value is not a valid input"),
        ({"limit_train_batches": 2.5}, "limit_train_batches: You have passed invalid value 2.5"),
        ({"gradient_clip_algorithm": "foo"}, "gradient_clip_algorithm: `gradient_clip_algorithm`"),
        # taken by Lightning unchecked: a division by zero, or wrong steps, later
        ({"accumulate_grad_batches": 0}, "accumulate_grad_batches=0 must be an integer >= 1"),
        ({"accumulate_grad_batches": -2}, "accumulate_grad_batches=-2 must be an integer >= 1"),
        ({"check_val_every_n_epoch": 0}, "check_val_every_n_epoch=0 must be an integer >= 1"),
        ({"val_check_interval": 0}, "val_check_interval=0 must be > 0"),
        # the model trains on float32 inputs: a precision that casts the weights cannot
        ({"precision": "16-true"}, "precision='16-true' must be 32-true, bf16-mixed or 16-mixed"),
        ({"max_time": "soon"}, "max_time='soon': expected DD:HH:MM:SS"),
    ],
)
def test_a_refused_option_is_one_config_error_naming_it(options, start, tmp_path):
    with pytest.raises(ConfigError) as exc:
        build_trainer(default_root_dir=tmp_path, **QUIET, **options)
    assert str(exc.value).startswith(start)
    assert "\n" not in str(exc.value)


def test_options_lightning_takes_are_not_refused(tmp_path):
    trainer = build_trainer(
        default_root_dir=tmp_path,
        max_epochs=0,
        limit_train_batches=0,
        check_val_every_n_epoch=None,
        val_check_interval=5,
        accumulate_grad_batches=2,
        precision="32-true",
        **QUIET,
    )
    assert trainer.max_epochs == 0 and trainer.accumulate_grad_batches == 2


def test_max_time_is_kept_by_the_runs_own_timer(tmp_path):
    """Lightning ignores Trainer(max_time=...) beside a Timer: the run's Timer keeps it."""
    trainer = build_trainer(default_root_dir=tmp_path, max_time={"minutes": 5}, **QUIET)
    (timer,) = [c for c in trainer.callbacks if isinstance(c, Timer)]
    assert timer.time_remaining() == pytest.approx(300.0)
    (unbounded,) = [
        c
        for c in build_trainer(default_root_dir=tmp_path, **QUIET).callbacks
        if isinstance(c, Timer)
    ]
    assert unbounded.time_remaining() is None


def test_a_late_refusal_is_taken_only_from_lightning(tmp_path):
    """Lightning's fit-time refusal of an option becomes one ConfigError; the same words
    raised anywhere else (a bug of ours, say) are left to show their traceback."""
    trainer = build_trainer(
        max_epochs=1, val_check_interval=500, default_root_dir=tmp_path, **QUIET
    )
    with pytest.raises(ValueError) as refused:
        trainer.fit(BoringModel())  # 64 training batches
    error = late_refusal(refused.value)
    assert isinstance(error, ConfigError)
    assert str(error).startswith("--trainer.val_check_interval: `val_check_interval` (500)")
    with pytest.raises(ValueError) as ours:
        raise ValueError(str(refused.value))
    assert late_refusal(ours.value) is None
    assert late_refusal(RuntimeError("`max_epochs` must be >= -1")) is None
