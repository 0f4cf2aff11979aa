"""`UsageError`, in a module of its own so every subcommand's module can raise it
without importing `metanas.cli` (which imports them: a cycle under ``python -m``)."""

__all__ = ["UsageError"]


class UsageError(ValueError):
    """Bad command-line input: reported in one line, exit status 2."""
