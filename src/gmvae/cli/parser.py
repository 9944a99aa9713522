"""LightningCLI's argument parser, with parse errors as one ``gmvae: error:`` line.

jsonargparse prints the usage of every option (hundreds of lines for a Trainer) and,
for a bad nested option, a report of every type it tried; a user needs the option
and what is wrong with it.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from pathlib import Path
from typing import NoReturn

import yaml
from jsonargparse import ArgumentParser
from lightning.pytorch.cli import LightningArgumentParser

from gmvae.compat import concise_parse_error, failing_parser, option_typehint, parser_actions
from gmvae.errors import ConfigError, suggestion, unknown_option


class OneLineErrorParser(LightningArgumentParser):
    """Parse errors as one ``gmvae: error:`` line, not the usage of every option."""

    verbose = False  # set by main(): --verbose shows jsonargparse's full report

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:
            super().error(message, ex)
        parser = failing_parser(ex, self)
        command = " ".join(["gmvae", *parser.prog.replace(" [options]", "").split()[1:]])
        text = message.strip() if self.verbose else concise_parse_error(message)
        unknown = unknown_option(text)
        if unknown:
            text = f"unknown option --{unknown}{suggestion(unknown, known_keys(parser))}"
        sys.stderr.write(f"gmvae: error: {text}\n(see: {command} --help)\n")
        self.exit(2)


def known_keys(parser: ArgumentParser) -> set[str]:
    """Every option of a jsonargparse parser as a dotted key, the fields of dataclass-typed
    options (``model.loss.knn_k``) included: they have no action of their own."""
    keys: set[str] = set()
    for action in parser_actions(parser):
        dest = getattr(action, "dest", "")
        if not dest or dest.rpartition(".")[2] == "help":  # --help, --model.network.help
            continue
        keys.add(dest)
        hint = option_typehint(action)
        for cls in (hint, *typing.get_args(hint)):
            if dataclasses.is_dataclass(cls):
                keys.update(f"{dest}.{f.name}" for f in dataclasses.fields(cls))
    return keys


def check_config_files(args: list[str]) -> None:
    """Raise :class:`ConfigError` naming a ``--config`` file that is not valid YAML, with the
    line and column (jsonargparse reads the text and reports it as ``"<unicode string>"``)."""
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            name = args[i + 1]
        elif arg.startswith("--config="):
            name = arg.split("=", 1)[1]
        else:
            continue
        path = Path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # not a file (an inline YAML string) or unreadable: jsonargparse says so
        try:
            yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            what = " ".join(p for p in (exc.context, exc.problem) if p)
            raise ConfigError(f"{path}{where}: not valid YAML: {what}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def command_summary(doc: str) -> str:
    """A command module's first docstring line without its usage: what ``gmvae --help`` shows."""
    line = doc.strip().splitlines()[0] if doc.strip() else ""
    line = line.split(": ", 1)[1] if line.startswith("``") and ": " in line else line
    return line.rstrip(".")
