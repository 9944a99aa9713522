"""LightningCLI's argument parser, with parse errors as one ``gmvae: error:`` line.

jsonargparse prints the usage of every option (hundreds of lines for a Trainer) and,
for a bad nested option, a report of every type it tried; a user needs the option
and what is wrong with it.
"""

from __future__ import annotations

import sys
from typing import NoReturn

from lightning.pytorch.cli import LightningArgumentParser

from gmvae.compat import concise_parse_error, failing_parser


class OneLineErrorParser(LightningArgumentParser):
    """Parse errors as one ``gmvae: error:`` line, not the usage of every option."""

    verbose = False  # set by main(): --verbose shows jsonargparse's full report

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:
            super().error(message, ex)
        parser = failing_parser(ex, self)
        command = " ".join(["gmvae", *parser.prog.replace(" [options]", "").split()[1:]])
        text = message.strip() if self.verbose else concise_parse_error(message)
        sys.stderr.write(f"gmvae: error: {text}\n(see: {command} --help)\n")
        self.exit(2)
