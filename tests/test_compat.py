"""The private Lightning and jsonargparse members gmvae relies on are all still there.

An upgrade that moves one fails here, naming it, instead of deep inside a training run.
jsonargparse's real error text is read end to end by ``tests/cli/test_errors.py``.
"""

import inspect

import pytest
from lightning.pytorch.callbacks import WeightAveraging
from lightning.pytorch.loggers import CSVLogger

from gmvae.compat import (
    PRIVATE_ATTRIBUTES,
    PRIVATE_METHODS,
    concise_parse_error,
    epoch_progress,
)
from gmvae.training.averaging import EvaluationEMA

from .conftest import bare_trainer


@pytest.mark.parametrize(
    "owner,name,params", [m[:3] for m in PRIVATE_METHODS], ids=lambda v: getattr(v, "__name__", v)
)
def test_each_private_method_exists_with_the_parameters_used(owner, name, params):
    method = getattr(owner, name, None)
    assert callable(method), f"{owner.__qualname__}.{name} is gone"
    assert tuple(inspect.signature(method).parameters)[: len(params)] == params


def _instance(owner, tmp_path):
    if owner is WeightAveraging:
        return owner()
    if owner is CSVLogger:
        return owner(tmp_path)
    raise AssertionError(f"no instance recipe for {owner}")


@pytest.mark.parametrize(
    "owner,name", [a[:2] for a in PRIVATE_ATTRIBUTES], ids=lambda v: getattr(v, "__name__", v)
)
def test_each_private_attribute_is_set_by_its_owner(owner, name, tmp_path):
    assert hasattr(_instance(owner, tmp_path), name), f"{owner.__qualname__}().{name} is gone"


def test_evaluation_ema_overrides_only_hooks_that_exist():
    """EvaluationEMA's own methods override WeightAveraging's: none may vanish upstream."""
    own = {n for n, v in vars(EvaluationEMA).items() if callable(v) and not n.startswith("__")}
    own -= {"_lerp", "evaluated_state_dict"}  # its own additions
    assert own <= set(dir(WeightAveraging))


def test_the_fit_loops_batch_progress(tmp_path):
    trainer = bare_trainer(tmp_path)
    progress = epoch_progress(trainer)
    assert progress.current.processed == 0 and progress.is_last_batch is False


@pytest.mark.parametrize(
    "message,expected",
    [
        (
            "Parser key \"model.lr\":\n  Expected a <class 'float'>. Got value: x\n"
            "  - Expected a <class 'float'>\n  Given value: x",
            "--model.lr: expected float, got 'x'",
        ),
        (
            'Parser key "trainer.logger":\n  - Problem with given class_path '
            "'lightning.pytorch.loggers.CSVLogger':\n    Option 'nope' is not accepted",
            "unknown option --trainer.logger.nope",
        ),
        ("something else", "something else"),
    ],
)
def test_jsonargparse_reports_cut_to_one_line(message, expected):
    assert concise_parse_error(message) == expected
