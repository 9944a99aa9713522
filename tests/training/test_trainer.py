"""build_trainer: the Trainer of every entry point, with the guards, the random state and
the safe checkpoint IO, and the fastest precision unless told otherwise."""

import pytest
from lightning.pytorch.callbacks import Timer, TQDMProgressBar
from lightning.pytorch.plugins.io import TorchCheckpointIO

from gmvae.errors import ConfigError
from gmvae.io.checkpoint import SafeCheckpointIO
from gmvae.runs.guard import NonFiniteLossGuard
from gmvae.runs.rng_state import RNGState
from gmvae.training.precision import fastest_precision
from gmvae.training.threads import ThreadTuner
from gmvae.training.trainer import MAX_EPOCHS, build_trainer, default_callbacks, default_plugins

QUIET = dict(logger=False, enable_progress_bar=False, enable_model_summary=False)


def _types(trainer):
    return [type(c) for c in trainer.callbacks]


def test_every_trainer_gets_the_guards_the_random_state_and_safe_checkpoints(tmp_path):
    trainer = build_trainer(default_root_dir=tmp_path, **QUIET)
    assert {Timer, RNGState, NonFiniteLossGuard, ThreadTuner} <= set(_types(trainer))
    assert isinstance(trainer.strategy.checkpoint_io, SafeCheckpointIO)
    assert trainer.max_epochs == MAX_EPOCHS
    assert trainer.precision == fastest_precision()


def test_options_win_and_the_callbacks_come_first(tmp_path):
    mine = TQDMProgressBar()
    trainer = build_trainer(
        callbacks=[mine], max_epochs=3, precision="32-true", default_root_dir=tmp_path, logger=False
    )
    assert trainer.max_epochs == 3 and trainer.precision == "32-true"
    assert trainer.callbacks.index(mine) < _types(trainer).index(NonFiniteLossGuard)


def test_a_checkpoint_io_given_is_kept():
    own = TorchCheckpointIO()
    assert default_plugins(own) == [own]
    assert [type(p) for p in default_plugins(None)] == [SafeCheckpointIO]
    assert [type(p) for p in default_plugins([])] == [SafeCheckpointIO]


def test_a_bad_thread_count_fails_at_once():
    with pytest.raises(ConfigError, match="threads"):
        default_callbacks(0)
