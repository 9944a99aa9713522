"""The project's own error types: the CLI turns them into one clear line and exit status 2.

Also how a mistyped option is worded, the same by every parser of the ``gmvae`` commands
(jsonargparse's for fit / validate / test, :class:`ToolParser` for the others).
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from typing import NoReturn


class GMVAEError(Exception):
    """Base class for every error gmvae reports to a user."""


class DataError(GMVAEError):
    """A data file is missing, unreadable, corrupt or of the wrong shape."""


class ConfigError(GMVAEError, ValueError):
    """An option has a value that gmvae cannot use."""


class TrainingError(GMVAEError):
    """Training cannot go on (e.g. the loss became NaN); the checkpoints saved before are kept."""


class DiskFullError(GMVAEError):
    """A write failed because the disk (or the user's quota) is full; nothing was replaced."""


def suggestion(given: str, known: list[str] | set[str], prefix: str = "--") -> str:
    """``"; did you mean --model.loss.knn_k?"`` for the closest known name, or ``""``.

    The same name at another depth comes first (``model.init`` is ``model.network.init``),
    then the options under the same parent (``model.loss.k`` is meant for one of the loss
    options, a name it begins first of all), then the closest name anywhere.
    """
    known = sorted(set(known) - {given})
    parent, _, leaf = given.rpartition(".")
    elsewhere = [k for k in known if k.rpartition(".")[2] == leaf]
    if elsewhere:
        under_parent = [k for k in elsewhere if k.startswith(parent + ".")] if parent else []
        return f"; did you mean {prefix}{(under_parent or elsewhere)[0]}?"
    if parent:
        children = (k[len(parent) + 1 :] for k in known if k.startswith(parent + "."))
        siblings = [k for k in children if "." not in k]
        starting = [k for k in siblings if k.startswith(leaf)]
        close = (
            starting if len(starting) == 1 else difflib.get_close_matches(leaf, siblings, 1, 0.3)
        )
        if close:
            return f"; did you mean {prefix}{parent}.{close[0]}?"
    close = difflib.get_close_matches(given, known, n=1, cutoff=0.6)
    return f"; did you mean {prefix}{close[0]}?" if close else ""


class ToolParser(argparse.ArgumentParser):
    """argparse for the tool commands, with errors worded as ``gmvae fit``'s: one line, an
    unknown option named with the closest known one, status 2."""

    def error(self, message: str) -> NoReturn:
        unknown = unknown_option(message)
        if unknown:
            known = [o[2:] for o in self._option_string_actions if o.startswith("--")]
            message = f"unknown option --{unknown}{suggestion(unknown, known)}"
        sys.stderr.write(f"gmvae: error: {message}\n(see: {self.prog} --help)\n")
        self.exit(2)


def unknown_option(message: str) -> str | None:
    """The option (without ``--``) an "unknown option" / "unrecognized arguments" error names."""
    found = re.match(r"(?:unknown option|unrecognized arguments:) --([^\s=;]+)", message.strip())
    return found.group(1) if found else None
