"""`UsageError`, in a module of its own so every subcommand's module can raise it
without importing `metanas.cli` (which imports them: a cycle under ``python -m``),
and the checks the subcommands share."""

import os

from metanas.security import creation_error

__all__ = ["UsageError", "check_output_directory", "check_seed", "forget_interrupts",
           "interrupt_noted", "note_interrupt", "raise_noted_interrupt"]

#: Seeds NumPy, Keras and Optuna all take.
MAX_SEED = 2**32 - 1


class UsageError(ValueError):
    """Bad command-line input: reported in one line, exit status 2."""


class Terminated(KeyboardInterrupt):
    """A SIGTERM, handled as Ctrl-C is (what a command keeps, it keeps; workers stop)."""


def interrupted_status(interrupt: KeyboardInterrupt) -> int:
    """The shell's exit status for a command ended by ``interrupt``: 143 for SIGTERM, else 130."""
    return 143 if isinstance(interrupt, Terminated) else 130


# The Ctrl-C or SIGTERM the command line's handler raised last, until a tuner
# raises it again or the command ends.
_noted = None


def note_interrupt(kind: type) -> None:
    """Notes that the command line's signal handler is raising ``kind``
    (`KeyboardInterrupt` or `Terminated`), for `raise_noted_interrupt`."""
    global _noted
    _noted = kind


def raise_noted_interrupt() -> None:
    """Raises again the interrupt `note_interrupt` noted, if any (once).

    Python cannot raise out of a weakref callback or a ``__del__``: a Ctrl-C
    that lands in one (TensorFlow and Keras run many while training) is
    printed as "Exception ignored in ..." and lost, and `metanas demo` went on
    to the end of its search (1 of 12 Ctrl-Cs during training). metanas's
    tuners call this at the end of each training epoch and before each trial,
    and the command line when a command returns. Outside the command line
    nothing is noted, and it does nothing.
    """
    global _noted
    kind, _noted = _noted, None
    if kind is not None:
        raise kind()


def interrupt_noted() -> bool:
    """Whether an interrupt is noted and not yet raised again or forgotten."""
    return _noted is not None


def forget_interrupts() -> None:
    """Forgets a noted interrupt (a command has ended, or has handled it)."""
    global _noted
    _noted = None


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
