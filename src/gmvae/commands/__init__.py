"""The ``gmvae`` tool commands beyond fit / validate / test (see ``gmvae.cli.TOOL_COMMANDS``)."""
