"""The private members of Lightning and jsonargparse that gmvae relies on, in one place.

Each has no public equivalent in the versions gmvae supports; ``tests/test_compat.py``
checks that every one still exists (with the parameters gmvae passes), so that an
upgrade that moves one fails there, loudly, rather than somewhere in a training run.
Where a public API does the job it is used instead (``LightningCLI.parse_arguments``
for the checkpoint check, ``LightningModule.trainer`` for "is a Trainer attached").
"""

from __future__ import annotations

import re
from typing import Any

import lightning as L
from jsonargparse import ArgumentParser
from lightning.pytorch.callbacks import WeightAveraging
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

# Methods: (owner, name, the parameters gmvae calls or overrides it with, who and why).
PRIVATE_METHODS: tuple[tuple[type, str, tuple[str, ...], str], ...] = (
    (
        LightningCLI,
        "_instantiate_trainer",
        ("self", "config", "callbacks"),
        "GMVAECLI overrides it to add the run's logger, plugins and callbacks to the Trainer "
        "built from the config (instantiate_trainer, the public one, has no callback list)",
    ),
    (
        LightningCLI,
        "_parser",
        ("self", "subcommand"),
        "the parser of `gmvae fit`, to dump the resumed run's config as config.yaml is written",
    ),
    (
        WeightAveraging,
        "_swap_models",
        ("self", "pl_module"),
        "EvaluationEMA swaps the average in at the end of training, as WeightAveraging does",
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
    (WeightAveraging, "_average_model", "EvaluationEMA builds and reads the averaged model"),
    (WeightAveraging, "_use_buffers", "EvaluationEMA builds the averaged model as the base does"),
    (WeightAveraging, "_kwargs", "EvaluationEMA builds the averaged model as the base does"),
    (
        WeightAveraging,
        "_latest_update_step",
        "EvaluationEMA counts its updates without reading n_averaged (a device sync)",
    ),
    (CSVLogger, "_experiment", "RunCSVLogger puts in the writer that continues metrics.csv"),
)


def epoch_progress(trainer: L.Trainer) -> Any:
    """The fit loop's batch progress in the epoch (``.is_last_batch``, ``.current.processed``).

    The in-epoch autosave skips an epoch's last batch, and the module's checkpoint hook
    counts the batches done, with it; Lightning has no public accessor.
    """
    return trainer.fit_loop.epoch_loop.batch_progress


def subcommand_parser(cli: LightningCLI, subcommand: str) -> ArgumentParser:
    """The parser of ``subcommand`` (``LightningCLI._parser``)."""
    return cli._parser(subcommand)


def failing_parser(exc: Exception | None, default: ArgumentParser) -> ArgumentParser:
    """The subcommand parser jsonargparse attaches to a parse error, else ``default``."""
    return getattr(exc, "subcommand_parser", None) or default


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
