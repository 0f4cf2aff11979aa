"""`UsageError`, in a module of its own so every subcommand's module can raise it
without importing `metanas.cli` (which imports them: a cycle under ``python -m``),
and the checks the subcommands share."""

import os

from metanas.security import creation_error

__all__ = ["UsageError", "check_output_directory", "check_seed"]

#: Seeds NumPy, Keras and Optuna all take.
MAX_SEED = 2**32 - 1


class UsageError(ValueError):
    """Bad command-line input: reported in one line, exit status 2."""


class Terminated(KeyboardInterrupt):
    """A SIGTERM, handled as Ctrl-C is (what a command keeps, it keeps; workers stop)."""


def interrupted_status(interrupt: KeyboardInterrupt) -> int:
    """The shell's exit status for a command ended by ``interrupt``: 143 for SIGTERM, else 130."""
    return 143 if isinstance(interrupt, Terminated) else 130


def check_seed(flag: str, seed) -> None:
    """A seed in 0 .. 2**32 - 1 (or None), else a UsageError naming ``flag``."""
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise UsageError(f"{flag} must be in 0..{MAX_SEED}, got {seed}")


def check_output_directory(flag: str, path: str) -> None:
    """Creates the output directory ``path`` now, before any work, or says why it cannot.

    Checks that a file can be written there (one is created and removed): a
    read-only directory otherwise failed with a traceback once work started.

    Raises:
        UsageError: ``path`` is an existing file, cannot be created, or is not writable.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{flag}: {path!r} is a file, not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise UsageError(f"{flag}: cannot create the directory {path!r} "
                         f"({error.strerror or error})") from None
    error = creation_error(path)
    if error is not None:
        raise UsageError(f"{flag}: cannot write in the directory {path!r} "
                         f"({error.strerror or error}); give a writable one")
