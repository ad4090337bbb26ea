"""Error types a user can meet; the CLI and the Snakefile print them as one line."""


class RegsimError(Exception):
    """Base class for every error caused by user input rather than a bug."""


class ConfigError(RegsimError):
    """The study configuration is invalid; the message names the key."""


class DataFileError(RegsimError):
    """A file written by a pipeline stage is missing, truncated or corrupt."""


class InputDataError(RegsimError):
    """A user's CSV (for ``regsim fit`` / ``regsim summarize``) cannot be used."""


class OutputError(RegsimError):
    """A result could not be written (a full disk, a read-only folder); nothing was replaced."""
