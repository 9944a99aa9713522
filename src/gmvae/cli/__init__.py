"""The ``gmvae`` command: LightningCLI's fit / validate / test and the tool commands.

``gmvae.cli.app`` holds the LightningCLI and the list of tool commands
(``TOOL_COMMANDS``); ``predict`` and ``tune`` live here, the figure commands in
:mod:`gmvae.figures` and ``reproduce`` in :mod:`gmvae.reproduce`.
"""

from gmvae.cli.app import main

__all__ = ["main"]
