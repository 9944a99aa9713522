"""The private members of Lightning and jsonargparse that gmvae relies on, in one place.

Each has no public equivalent in the versions gmvae supports; ``tests/test_compat.py``
checks that every one still exists (with the parameters gmvae passes), so that an
upgrade that moves one fails there, loudly, rather than somewhere in a training run.
Where a public API does the job it is used instead: ``LightningCLI.parse_arguments`` for
the checkpoint check, ``LightningCLI.instantiate_trainer`` for the run's Trainer,
``LightningCLI.parser.dump`` for the resumed run's config, ``Trainer.is_last_batch``,
``LightningModule.trainer`` for "is a Trainer attached", and ``WeightAveraging``'s public
hooks (``should_update``) with a swap of gmvae's own (``gmvae.training.averaging``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import lightning as L
from jsonargparse import ArgumentParser
from lightning.pytorch.callbacks import ModelCheckpoint, WeightAveraging
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

# Methods: (owner, name, the parameters gmvae calls or overrides it with, who and why).
PRIVATE_METHODS: tuple[tuple[type, str, tuple[str, ...], str], ...] = (
    (
        ModelCheckpoint,
        "_save_last_checkpoint",
        ("self", "trainer", "monitor_candidates"),
        "SigtermCheckpoint saves last.ckpt on SIGTERM as the in-epoch autosave would (the "
        "name, a save_last='link', last_model_path; trainer.save_checkpoint does none of it)",
    ),
    (
        ModelCheckpoint,
        "_monitor_candidates",
        ("self", "trainer"),
        "SigtermCheckpoint passes the metrics a save of last.ckpt names",
    ),
    (
        ExperimentWriter,
        "_check_log_dir_exists",
        ("self",),
        "RunCSVLogger's writer overrides it to read the rows a resume keeps (the base deletes "
        "metrics.csv there: were it renamed, a resume would lose the file)",
    ),
    (
        ExperimentWriter,
        "_record_new_keys",
        ("self",),
        "RunCSVLogger's writer rewrites metrics.csv with the columns of every row kept",
    ),
)
# Instance attributes: (owner, name, who and why). Set by the owner's __init__.
PRIVATE_ATTRIBUTES: tuple[tuple[type, str, str], ...] = (
    (
        WeightAveraging,
        "_average_model",
        "EvaluationEMA builds the averaged model its base's hooks read, and reads it",
    ),
    (CSVLogger, "_experiment", "RunCSVLogger puts in the writer that continues metrics.csv"),
)


def epoch_batches_done(trainer: L.Trainer) -> int:
    """The batches the fit loop has trained in this epoch (a resumed epoch's included).

    The module's checkpoint hook tells a checkpoint taken mid-epoch from one taken after
    the epoch's last batch with it; Lightning has no public accessor
    (``Trainer.is_last_batch`` says whether a batch is the last, not how many were done).
    """
    return trainer.fit_loop.epoch_loop.batch_progress.current.processed


def parser_actions(parser: ArgumentParser) -> Iterable[Any]:
    """The options of a jsonargparse parser (argparse's ``_actions``, which jsonargparse
    keeps): the "did you mean" of an unknown option compares it with their names."""
    return parser._actions


def failing_parser(exc: Exception | None, default: ArgumentParser) -> ArgumentParser:
    """The subcommand parser jsonargparse attaches to a parse error, else ``default``."""
    return getattr(exc, "subcommand_parser", None) or default


def option_typehint(action: Any) -> Any:
    """The type of a jsonargparse option (``ActionTypeHint._typehint``): the fields of a
    dataclass-typed option (``--model.loss``) have no action of their own, and the "did you
    mean" of an unknown option needs them."""
    return getattr(action, "_typehint", None)


# jsonargparse's error text, read by concise_parse_error (no structured error exists).
def concise_parse_error(message: str) -> str:
    """jsonargparse's report for a bad nested option, cut to the line that says what is wrong."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    head = _PARSER_KEY.match(lines[0]) if lines else None
    if head is None:
        return message.strip()
    key, rest = head.group(1), [head.group(2), *lines[1:]] if head.group(2) else lines[1:]
    for i, line in enumerate(rest):
        if line.startswith("- Problem with given class_path"):
            inner = rest[i + 1 :]
            while inner and (nested := _PARSER_KEY.match(inner[0])):
                key += "." + nested.group(1)
                inner = [nested.group(2), *inner[1:]] if nested.group(2) else inner[1:]
            detail = inner[0] if inner else "invalid value"
            unknown = re.fullmatch(r"Option '([^']+)' is not accepted", detail)
            if unknown:
                return f"unknown option --{key}.{unknown.group(1)}"
            return _plain_types(f"--{key}: {detail}")
    expected = [line[len("- Expected a ") :] for line in rest if line.startswith("- Expected a ")]
    given = next(
        (line.split(":", 1)[1].strip() for line in rest if line.startswith("Given value:")), ""
    )
    if expected:
        return _plain_types(f"--{key}: expected {' or '.join(expected)}, got {given!r}")
    return _plain_types(f"--{key}: {rest[0] if rest else 'invalid value'}")


_PARSER_KEY = re.compile(r'Parser key "([^"]+)":\s*(.*)')


def _plain_types(text: str) -> str:
    return re.sub(r"<class '(?:builtins\.)?([^']+)'>", r"\1", text)
