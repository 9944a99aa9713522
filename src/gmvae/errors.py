"""The project's own error types: the CLI turns them into one clear line and exit status 2."""


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
