"""The exception family. Every failure a user can cause is an AecError.

The CLI maps AecError to exit code 1 with a one-line message; anything else
is a bug and shows a traceback only with --debug.
"""


class AecError(Exception):
    """Base of every user-facing failure. str(err) is the one-line message."""


def list_problems(problems: list[str], shown: int = 5) -> str:
    """Several one-line problems as one line: the first few, then how many more."""
    more = f"; and {len(problems) - shown} more" if len(problems) > shown else ""
    return "; ".join(problems[:shown]) + more


class InputError(AecError):
    """An input file (image, array, data set) is missing or unusable."""


class ContainerError(AecError):
    """An .aec file is malformed, truncated or corrupt."""


class ModelError(AecError):
    """A model file is missing, malformed, or does not match a container."""


class OutputError(AecError):
    """An output cannot be written (exists without --force, unsafe path, I/O)."""


class DataError(AecError):
    """A training data set cannot be found, fetched or verified."""
