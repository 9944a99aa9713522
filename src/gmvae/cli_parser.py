"""LightningCLI's argument parser, with parse errors as one ``gmvae: error:`` line.

jsonargparse prints the usage of every option (hundreds of lines for a Trainer) and,
for a bad nested option, a report of every type it tried; a user needs the option
and what is wrong with it.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import re
import sys
import typing
from pathlib import Path
from typing import NoReturn

import yaml
from jsonargparse import ArgumentParser
from lightning.pytorch.cli import LightningArgumentParser

from gmvae.errors import ConfigError


class OneLineErrorParser(LightningArgumentParser):
    """Parse errors as one ``gmvae: error:`` line, not the usage of every option."""

    verbose = False  # set by main(): --verbose shows jsonargparse's full report

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:
            super().error(message, ex)
        parser: ArgumentParser = getattr(ex, "subcommand_parser", None) or self
        command = " ".join(["gmvae", *parser.prog.replace(" [options]", "").split()[1:]])
        text = message.strip() if self.verbose else _concise(message)
        unknown = _unknown_option(text)
        if unknown:
            text = f"unknown option --{unknown}{suggestion(unknown, known_keys(parser))}"
        sys.stderr.write(f"gmvae: error: {text}\n(see: {command} --help)\n")
        self.exit(2)


class ToolParser(argparse.ArgumentParser):
    """argparse for the tool commands, with errors worded as ``gmvae fit``'s: one line, an
    unknown option named with the closest known one, status 2."""

    def error(self, message: str) -> NoReturn:
        unknown = _unknown_option(message)
        if unknown:
            known = [o[2:] for o in self._option_string_actions if o.startswith("--")]
            message = f"unknown option --{unknown}{suggestion(unknown, known)}"
        sys.stderr.write(f"gmvae: error: {message}\n(see: {self.prog} --help)\n")
        self.exit(2)


def _unknown_option(message: str) -> str | None:
    """The option (without ``--``) an "unknown option" / "unrecognized arguments" error names."""
    found = re.match(r"(?:unknown option|unrecognized arguments:) --([^\s=;]+)", message.strip())
    return found.group(1) if found else None


def known_keys(parser: ArgumentParser) -> set[str]:
    """Every option of a jsonargparse parser as a dotted key, the fields of dataclass-typed
    options (``model.loss.knn_k``) included: they have no action of their own."""
    keys: set[str] = set()
    for action in parser._actions:
        dest = getattr(action, "dest", "")
        if not dest or dest == "help":
            continue
        keys.add(dest)
        hint = getattr(action, "_typehint", None)
        for cls in (hint, *typing.get_args(hint)):
            if dataclasses.is_dataclass(cls):
                keys.update(f"{dest}.{f.name}" for f in dataclasses.fields(cls))
    return keys


def _concise(message: str) -> str:
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


def suggestion(given: str, known: list[str] | set[str], prefix: str = "--") -> str:
    """``"; did you mean --model.loss.knn_k?"`` for the closest known name, or ``""``.

    A dotted key is compared with its siblings first (the options under the same parent:
    ``model.loss.k`` is meant for one of the loss options), a name it begins first of all.
    """
    parent, _, leaf = given.rpartition(".")
    siblings = sorted(k.rpartition(".")[2] for k in known if parent and k.startswith(parent + "."))
    siblings = [k for k in siblings if "." not in k]
    starting = [k for k in siblings if k.startswith(leaf)]
    close = starting if len(starting) == 1 else difflib.get_close_matches(leaf, siblings, 1, 0.3)
    if close:
        return f"; did you mean {prefix}{parent}.{close[0]}?"
    close = difflib.get_close_matches(given, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {prefix}{close[0]}?" if close else ""


def command_summary(doc: str) -> str:
    """A command module's first docstring line without its usage: what ``gmvae --help`` shows."""
    line = doc.strip().splitlines()[0] if doc.strip() else ""
    line = line.split(": ", 1)[1] if line.startswith("``") and ": " in line else line
    return line.rstrip(".")
