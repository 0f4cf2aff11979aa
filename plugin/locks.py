"""Exclusive file locks that work on POSIX and on Windows.

metanas locks a file to keep processes off each other's work: the tracking
spool (`metanas.tracking.spool`: one replayer at a time, and an in-flight file
per live search) and a search's project directory (`metanas.tuners.storage`).
On POSIX that is ``fcntl.flock``; Windows has no ``fcntl`` (importing it fails,
which made every tracked search fail there), so there it is ``msvcrt.locking``
on one byte far beyond any data (`LOCK_OFFSET`, as SQLite does): Windows's locks
are mandatory, and one on the data would keep other processes (and other opens
in this one) from reading it. Both lock per open file (two opens of one file in
one process exclude each other too), and both locks go with their process: a
killed process's are released (on Windows, by the system, soon after). Where
neither exists, `lock` does nothing (`AVAILABLE` is False, and `unguarded`
warns once that processes must not share what it would guard).
"""

from __future__ import annotations

import errno
import os
import time
import warnings
from typing import Any, Set, Union

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
try:
    import msvcrt
except ImportError:  # POSIX
    msvcrt = None  # type: ignore[assignment]

__all__ = ["AVAILABLE", "BACKEND", "LOCK_OFFSET", "lock", "unlock", "unguarded"]

#: Which lock this platform has: ``"fcntl"``, ``"msvcrt"`` or ``"none"``.
BACKEND = "fcntl" if fcntl is not None else "msvcrt" if msvcrt is not None else "none"
#: Whether `lock` excludes anything here.
AVAILABLE = BACKEND != "none"

#: Where Windows's lock byte is: 1 TiB, beyond any data metanas writes in a lock file.
LOCK_OFFSET = 1 << 40
# How long a waiting `lock` sleeps between tries on Windows, whose own waiting
# mode gives up after 10 s.
_POLL_SECONDS = 0.05
# What msvcrt.locking raises when another open of the file holds the byte.
_HELD_ERRNOS = {errno.EACCES, getattr(errno, "EDEADLOCK", errno.EDEADLK), errno.EDEADLK}

FileLike = Union[int, Any]


def _fd(file: FileLike) -> int:
    return file if isinstance(file, int) else file.fileno()


def lock(file: FileLike, *, wait: bool = True) -> None:
    """Locks ``file`` (an open file or a descriptor) exclusively.

    Args:
        file: An open file, or its descriptor; the lock belongs to this open.
        wait: Wait for another holder to let go (else raise at once).

    Raises:
        BlockingIOError: ``wait`` is False and another open of the file holds it.
        OSError: The file system cannot lock (some network file systems).
    """
    fd = _fd(file)
    if BACKEND == "fcntl":
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    elif BACKEND == "msvcrt":
        _at_lock_byte(fd, lambda: _msvcrt_lock(fd, wait))


def unlock(file: FileLike) -> None:
    """Lets go of the lock `lock` took on ``file`` (closing the file does too)."""
    fd = _fd(file)
    if BACKEND == "fcntl":
        fcntl.flock(fd, fcntl.LOCK_UN)
    elif BACKEND == "msvcrt":
        _at_lock_byte(fd, lambda: msvcrt.locking(fd, msvcrt.LK_UNLCK, 1))


def _at_lock_byte(fd: int, action) -> None:
    """Runs ``action`` with ``fd`` at `LOCK_OFFSET` (msvcrt locks from the
    file's position), then puts the position back."""
    position = os.lseek(fd, 0, os.SEEK_CUR)
    os.lseek(fd, LOCK_OFFSET, os.SEEK_SET)
    try:
        action()
    finally:
        os.lseek(fd, position, os.SEEK_SET)


def _msvcrt_lock(fd: int, wait: bool) -> None:
    while True:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return
        except OSError as error:
            if error.errno not in _HELD_ERRNOS:
                raise
            if not wait:
                raise BlockingIOError(error.errno, "the file is locked by another open of it")
        time.sleep(_POLL_SECONDS)


_WARNED: Set[str] = set()


def unguarded(what: str) -> None:
    """Warns once per ``what`` that, with no file locks here, it is not guarded."""
    if AVAILABLE or what in _WARNED:
        return
    _WARNED.add(what)
    warnings.warn(f"this platform has no file locks (neither fcntl nor msvcrt): {what}",
                  RuntimeWarning, stacklevel=3)
