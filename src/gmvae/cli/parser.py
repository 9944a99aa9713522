"""LightningCLI's argument parser, with parse errors as one ``gmvae: error:`` line.

jsonargparse prints the usage of every option (hundreds of lines for a Trainer) and,
for a bad nested option, a report of every type it tried; a user needs the option
and what is wrong with it.
"""

from __future__ import annotations

import re
import sys
from typing import NoReturn

from jsonargparse import ArgumentParser
from lightning.pytorch.cli import LightningArgumentParser


class OneLineErrorParser(LightningArgumentParser):
    """Parse errors as one ``gmvae: error:`` line, not the usage of every option."""

    verbose = False  # set by main(): --verbose shows jsonargparse's full report

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:
            super().error(message, ex)
        parser: ArgumentParser = getattr(ex, "subcommand_parser", None) or self
        command = " ".join(["gmvae", *parser.prog.replace(" [options]", "").split()[1:]])
        text = message.strip() if self.verbose else _concise(message)
        sys.stderr.write(f"gmvae: error: {text}\n(see: {command} --help)\n")
        self.exit(2)


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
