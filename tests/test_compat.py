"""The private Lightning and jsonargparse members gmvae relies on are all still there.

An upgrade that moves one fails here, naming it, instead of deep inside a training run.
jsonargparse's real error text is read end to end by ``tests/cli/test_errors.py``.
"""

import inspect

import pytest
from jsonargparse import ArgumentParser
from lightning.pytorch.callbacks import WeightAveraging
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from gmvae.compat import (
    PRIVATE_ATTRIBUTES,
    PRIVATE_METHODS,
    concise_parse_error,
    epoch_batches_done,
    option_typehint,
    parser_actions,
)
from gmvae.config import LossConfig
from gmvae.runs.directory import _KeepingWriter
from gmvae.training.averaging import EvaluationEMA
from gmvae.training.module import GMVAEModule

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


def test_every_private_method_overridden_is_listed():
    """An override of a private method that Lightning renamed would silently stop being
    called: the CSV writer's would let the base class delete metrics.csv on a resume."""
    overridden = {
        n for n in vars(_KeepingWriter) if n.startswith("_") and hasattr(ExperimentWriter, n)
    }
    overridden -= {n for n in overridden if n.startswith("__")}
    listed = {name for owner, name, *_ in PRIVATE_METHODS if owner is ExperimentWriter}
    assert overridden and overridden <= listed


def test_evaluation_ema_reads_no_other_private_member_of_weight_averaging():
    source = inspect.getsource(inspect.getmodule(EvaluationEMA))
    listed = {name for owner, name, _ in PRIVATE_ATTRIBUTES if owner is WeightAveraging}
    used = {n for n in vars(WeightAveraging()) if f"self.{n}" in source}
    used |= {n for n in vars(WeightAveraging) if f".{n}(" in source}
    assert {n for n in used if n.startswith("_") and not n.startswith("__")} == listed


def test_the_fit_loops_batch_count(tmp_path):
    assert epoch_batches_done(bare_trainer(tmp_path)) == 0


def _model_parser() -> ArgumentParser:
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(GMVAEModule, "model")
    return parser


def test_a_dataclass_option_has_its_type_on_its_action():
    """The "did you mean" of a mistyped loss option reads the dataclass from the action."""
    actions = {a.dest: a for a in parser_actions(_model_parser())}
    assert "model.lr" in actions
    assert LossConfig in (option_typehint(actions["model.loss"]).__args__)


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--model.loss.knn_k", "three"], "--model.loss.knn_k: Expected a int. Got value: three"),
        (["--model.lr", "x"], "--model.lr: Expected a float. Got value: x"),
        (["--model.loss", '{"nope": 1}'], "unknown option --model.loss.nope"),
    ],
)
def test_jsonargparse_own_reports_are_read(args, expected):
    """The wording concise_parse_error reads, as this jsonargparse writes it."""
    with pytest.raises(Exception) as exc:  # noqa: B017 (jsonargparse's ArgumentError)
        _model_parser().parse_args(args)
    assert concise_parse_error(str(exc.value)) == expected


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
