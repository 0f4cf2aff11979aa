"""The spool: tracking records that wait on disk for the tracking server.

Each record is one JSON line with a unique ``id`` (its idempotency key). A
record leaves the spool only after it was applied in full; applying one twice
changes nothing (see `metanas.tracking.records.apply_record`), so a crash
between applying and removing it is harmless. Several processes (the workers
of a distributed search) may share a spool directory: each writes its own
file, and a lock file serialises replays. A line that is not a record (a torn
write, or JSON that is no object) is never dropped: a replay moves it to
``<file>.unreadable``; an object that is no record metanas can apply goes,
with the reason, to ``rejected.jsonl`` (`Spool.reject`).

Records sent straight to MLflow are written ahead too (`Spool.write_ahead`):
to an in-flight file of their `Spool` object's own, ``<name>@<host>-<pid>-<random>
.inflight.jsonl``, locked while they are sent and emptied once MLflow has them,
so a process killed mid-send (SIGKILL, Ctrl-C) leaves them on disk;
`Spool.recover_inflight` (the next search's tracker, ``metanas tracking sync``)
moves them to the pending file ``<name>.pending.jsonl``, to be replayed. Each
search owning its file, searches that share a spool directory never wait on
each other's sends, nor take each other's records in flight: a file whose lock
is held belongs to a live search, and is left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import socket
import uuid
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from metanas import locks

__all__ = ["Spool", "WriteAhead"]

PENDING_SUFFIX = ".pending.jsonl"
#: Records being sent right now by a live process (it holds the file's lock).
INFLIGHT_SUFFIX = ".inflight.jsonl"
#: In an in-flight file's name: between the pending file's stem and its owner.
OWNER_SEPARATOR = "@"
#: Records the server rejected for good (a bad value, not an outage): kept, never dropped.
REJECTED_NAME = "rejected.jsonl"
#: Beside a pending file: its lines that are not JSON (a torn write), kept, never dropped.
UNREADABLE_SUFFIX = ".unreadable"
# How many times `Spool._open_locked` opens an in-flight file removed as it locked it.
_OPEN_ATTEMPTS = 100


class WriteAhead:
    """What `Spool.write_ahead` yields: whether the records are on disk, and
    whether to leave them there (``keep``) when the body returns."""

    def __init__(self, written: bool) -> None:
        self.written = written
        self.keep = False


class Spool:
    """JSON-lines files of pending tracking records under ``directory``.

    Args:
        directory: The spool directory (created on the first write).
        name: This process's file name stem (e.g. the keras-tuner tuner id).

    Raises:
        ValueError: ``name`` is empty or holds a path separator.
    """

    def __init__(self, directory: os.PathLike, name: str = "tuner0") -> None:
        if not isinstance(name, str) or not name or "/" in name or os.sep in name:
            raise ValueError(f"name must be a non-empty file name stem without '/', got {name!r}.")
        locks.unguarded("searches must not share a tracking spool directory (one "
                        "replaying it could drop the records another adds meanwhile)")
        self.directory = pathlib.Path(directory)
        self.path = self.directory / f"{name}{PENDING_SUFFIX}"
        # Its own in-flight file: another search given the same directory and
        # name (an explicit spool_dir) neither waits on its lock nor takes its
        # records. The host and pid say whose it is to a person looking.
        owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.inflight = self.directory / f"{name}{OWNER_SEPARATOR}{owner}{INFLIGHT_SUFFIX}"
        # Its in-flight file, locked, while it keeps records only it holds
        # (`WriteAhead.keep`): no other process takes them meanwhile.
        self._kept: Optional[Any] = None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Holds the spool directory's lock (one replayer at a time)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "a") as handle:
            locks.lock(handle)
            try:
                yield
            finally:
                locks.unlock(handle)

    def append(self, record: Dict[str, Any]) -> None:
        """Adds ``record`` to this process's pending file, durably.

        The record starts on a line of its own (after a torn line, a newline
        first), and a write that fails (a full disk) is cut back off, so a
        failed append leaves the file as it was and never merges two lines.

        Raises:
            OSError: The record could not be written (the file is unchanged).
        """
        with self.locked():
            _append_line(self.path, json.dumps(record, sort_keys=True))

    @contextlib.contextmanager
    def write_ahead(self, records: List[Dict[str, Any]]) -> Iterator["WriteAhead"]:
        """Keeps ``records`` durably on disk while the body sends them to MLflow.

        They are appended (fsync'd) to this spool's own in-flight file, which
        is locked for the duration, so no other process replays them
        meanwhile; no other search uses that file, so none waits on the lock.
        When the body returns (sent, or spooled by it) the file is emptied,
        unless it set ``keep`` (some are only in memory: the spool could not
        take them; the file then stays locked until the next call or
        `drop_inflight`); when it raises (above all a KeyboardInterrupt) or the
        process is killed, the records stay, for `recover_inflight` to move
        to the pending file: a record is on disk or in MLflow at every moment.

        Yields:
            A `WriteAhead`: ``written`` is False when the disk could not take
            them (e.g. a full disk: the body sends them all the same).
        """
        data = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode("utf-8")
        handle, self._kept = self._kept, None
        if handle is None:
            try:
                handle = self._open_locked()
            except OSError:
                yield WriteAhead(False)
                return
        hold = False
        try:
            stuck = False
            if os.fstat(handle.fileno()).st_size:
                # What an earlier call kept (only in memory otherwise): moved
                # out first, as emptying must not drop it.
                try:
                    self._promote(handle, self.inflight)
                except OSError:  # the pending file cannot take them: they stay here
                    stuck = True
            state = WriteAhead(False)
            try:
                view = memoryview(data)
                while view:
                    view = view[handle.write(view):]
                os.fsync(handle.fileno())
                state.written = True
            except OSError:
                if not stuck:
                    with contextlib.suppress(OSError):
                        os.ftruncate(handle.fileno(), 0)
            yield state
            if state.keep or stuck:
                hold = True  # records only this process holds: no one else takes them
            else:
                # Sent, or spooled by the body. No fsync: a crash that undoes
                # this truncation only makes a replay apply them once more,
                # which changes nothing.
                with contextlib.suppress(OSError):
                    os.ftruncate(handle.fileno(), 0)
        finally:
            if hold:
                self._kept = handle
            else:
                _release(handle)

    def _open_locked(self):
        """This spool's in-flight file, open and locked (created if need be).

        Another process's `drop_inflight` removes an empty in-flight file it
        can lock; one removed between our open and our lock is opened again,
        so records are never written to a file no longer in the directory.

        Raises:
            OSError: It could not be created or opened (or `_OPEN_ATTEMPTS`
                times, it was removed meanwhile).
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        for _ in range(_OPEN_ATTEMPTS):
            handle = open(self.inflight, "a+b", buffering=0)
            try:
                locks.lock(handle)
                if _same_file(handle, self.inflight):
                    return handle
            except BaseException:
                handle.close()
                raise
            _release(handle)
        # A file system whose stat never names the file we opened (a Windows
        # network drive): its records are sent without being written ahead.
        raise OSError(f"{self.inflight} is never the file opened as it")

    def drop_inflight(self) -> None:
        """The end of a search: lets go of this spool's in-flight file (what
        it kept stays there, for the next search or ``sync`` to recover), and
        removes the empty in-flight files of the directory no live process
        holds (this one's, those of searches killed between two sends, and
        the ``<name>.inflight.jsonl`` files of earlier versions, emptied by a
        recovery).
        """
        if self._kept is not None:
            handle, self._kept = self._kept, None
            _release(handle)
        in_use = []
        with contextlib.suppress(OSError):  # what cannot be looked at is left as it is
            for path, handle in self._unheld("rb", own=True):
                # Its owner, were it alive, checks after locking that its file
                # is still the one in the directory (`_open_locked`). An earlier
                # version's file was removed so by its owner at its end.
                if os.fstat(handle.fileno()).st_size == 0 and _same_file(handle, path):
                    try:
                        path.unlink()
                    except PermissionError:  # Windows: not while we hold it open
                        in_use.append(path)
        # Windows, once they are closed. No live search can lose records to it
        # there: a file any process holds open cannot be removed, and a search
        # that opens it after creates it anew (`_open_locked`).
        for path in in_use:
            with contextlib.suppress(OSError):
                if path.stat().st_size == 0:
                    path.unlink()

    def recover_inflight(self) -> int:
        """Moves what killed processes left in their in-flight files to their
        pending files; returns how many records it moved.

        A file a live process holds (it is sending them now, or keeps them) is
        left alone, and so is this spool's own.

        Raises:
            OSError: The pending file could not be written (the in-flight file
                keeps them).
        """
        moved = 0
        for path, handle in self._unheld("r+b"):
            if os.fstat(handle.fileno()).st_size:
                moved += self._promote(handle, path)
        return moved

    def _unheld(self, mode: str, *, own: bool = False) -> Iterator[Tuple[pathlib.Path, Any]]:
        """The in-flight files of the directory that no live process holds,
        each open (in ``mode``) and locked while the caller has it; this
        spool's own only if ``own``."""
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob(f"*{INFLIGHT_SUFFIX}")):
            if path == self.inflight and not own:
                continue
            try:
                handle = open(path, mode, buffering=0)
            except FileNotFoundError:
                continue  # removed meanwhile
            with handle:
                try:
                    locks.lock(handle, wait=False)
                except OSError:
                    continue  # a live process is sending these, or keeps them
                try:
                    yield path, handle
                finally:
                    locks.unlock(handle)

    def _promote(self, handle, path: pathlib.Path) -> int:
        """Appends the records of the locked in-flight file ``handle`` to its
        pending file (torn lines to its ``.unreadable`` side file), then empties it."""
        handle.seek(0)
        records, unreadable = _parse(handle.read().decode("utf-8", errors="surrogateescape"))
        pending = Spool(self.directory, pending_name(path))
        for record in records:
            pending.append(record)
        if unreadable:
            Spool.set_aside(pending.path, unreadable)
        os.ftruncate(handle.fileno(), 0)
        os.fsync(handle.fileno())
        return len(records)

    def rejected(self) -> int:
        """How many refused records the directory's ``rejected.jsonl`` keeps."""
        path = self.directory / REJECTED_NAME
        if not path.is_file():
            return 0
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        return sum(1 for line in text.split("\n") if line.strip())

    @staticmethod
    def inflight_files(root: os.PathLike) -> List[pathlib.Path]:
        """The non-empty in-flight files under ``root`` (at any depth)."""
        root = pathlib.Path(root)
        if not root.is_dir():
            return []
        found = []
        for path in sorted(root.rglob(f"*{INFLIGHT_SUFFIX}")):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_size:
                    found.append(path)
        return found

    def files(self) -> List[pathlib.Path]:
        """Every pending file in the directory (all processes')."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob(f"*{PENDING_SUFFIX}"))

    def has_pending(self, accept: Optional[Callable[[Dict[str, Any]], bool]] = None) -> bool:
        """Whether a record waits (one ``accept`` takes, if given).

        Without the lock: another process replaying may remove a file meanwhile.
        """
        for path in self.files():
            try:
                if path.stat().st_size == 0:
                    continue
            except FileNotFoundError:
                continue
            if accept is None or any(accept(r) for r in self.read(path)):
                return True
        return False

    @staticmethod
    def read(path: pathlib.Path) -> List[Dict[str, Any]]:
        """The records of one pending file (see `load`; its unreadable lines are left out)."""
        return Spool.load(path)[0]

    @staticmethod
    def load(path: pathlib.Path) -> Tuple[List[Dict[str, Any]], List[str]]:
        """The records of one pending file, and the lines that hold none.

        A line that is not JSON (a torn write: a crash or a full disk mid-write),
        or is JSON but no object (no record is a list or a number), is returned
        as text, for `set_aside`. A record appended to such a line
        by an older metanas (which did not begin a new line) is recovered. A
        file another process removed meanwhile holds none.
        """
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except FileNotFoundError:
            return [], []
        return _parse(text)

    @staticmethod
    def set_aside(path: pathlib.Path, lines: List[str]) -> pathlib.Path:
        """Appends unreadable ``lines`` of a pending file to ``<file>.unreadable``
        (kept for a person to look at, never deleted); returns that file.

        Raises:
            OSError: They could not be written (leave them where they are).
        """
        side = path.with_name(path.name + UNREADABLE_SUFFIX)
        with open(side, "a", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write("".join(line + "\n" for line in lines))
            handle.flush()
            os.fsync(handle.fileno())
        return side

    @staticmethod
    def load_setting_aside(
            path: pathlib.Path) -> Tuple[List[Dict[str, Any]], List[str], Optional[pathlib.Path]]:
        """`load`, with the unreadable lines moved to their side file (`set_aside`)
        and the pending file rewritten with the records alone.

        Returns the records, the unreadable lines, and the side file (None when
        there were none).

        Raises:
            OSError: The side file or the rewrite could not be written.
        """
        waiting, unreadable = Spool.load(path)
        side = None
        if unreadable:
            side = Spool.set_aside(path, unreadable)  # OSError: they stay in place
            Spool.rewrite(path, waiting)
        return waiting, unreadable, side

    def unreadable(self) -> Dict[pathlib.Path, int]:
        """Unreadable lines kept in the directory: in side files and still in pending files."""
        found: Dict[pathlib.Path, int] = {}
        if not self.directory.is_dir():
            return found
        for side in sorted(self.directory.glob(f"*{PENDING_SUFFIX}{UNREADABLE_SUFFIX}")):
            text = side.read_text(encoding="utf-8", errors="surrogateescape")
            found[side] = sum(1 for line in text.split("\n") if line.strip())
        for path in self.files():
            count = len(self.load(path)[1])
            if count:
                found[path] = count
        return {path: n for path, n in found.items() if n}

    @staticmethod
    def rewrite(path: pathlib.Path, records: List[Dict[str, Any]]) -> None:
        """Atomically replaces a pending file's records (removes it when empty).

        Raises:
            OSError: It could not be written; the file is as it was, and no
                temporary file is left behind.
        """
        if not records:
            path.unlink(missing_ok=True)
            return
        tmp = path.with_suffix(".tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                for record in records:
                    handle.write(json.dumps(record, sort_keys=True) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise

    def reject(self, record: Dict[str, Any], reason: str) -> None:
        """Keeps a record the server refused for good, with the reason, durably
        (as `append`: on a line of its own, fsync'd, or not at all).

        Raises:
            OSError: It could not be written (``rejected.jsonl`` is unchanged).
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        # Without the directory's lock: a replay that holds it calls this.
        _append_line(self.directory / REJECTED_NAME,
                     json.dumps({"reason": reason, "record": record}, sort_keys=True))


def _append_line(path: pathlib.Path, line: str) -> None:
    """Appends ``line`` to ``path`` and syncs it to disk: on a line of its own
    (after a torn line, a newline first), and a write that fails (a full disk)
    is cut back off, so the file is as it was or holds the whole line.

    Raises:
        OSError: The line could not be written (the file is unchanged).
    """
    data = (line + "\n").encode("utf-8")
    # Unbuffered: a failed write leaves nothing behind in a buffer that
    # closing the file would try to write again.
    with open(path, "a+b", buffering=0) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size:
            handle.seek(size - 1)
            if handle.read(1) != b"\n":  # a torn line: begin a new one
                data = b"\n" + data
        try:
            view = memoryview(data)
            while view:
                view = view[handle.write(view):]
            os.fsync(handle.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(handle.fileno(), size)
                os.fsync(handle.fileno())
            raise


def pending_name(inflight: pathlib.Path) -> str:
    """The stem of the pending file an in-flight file's records go to:
    ``tuner0@host-12-ab.inflight.jsonl`` (and an older ``tuner0.inflight.jsonl``) -> ``tuner0``."""
    stem = inflight.name[: -len(INFLIGHT_SUFFIX)]
    return stem.rpartition(OWNER_SEPARATOR)[0] or stem


def _same_file(handle, path: pathlib.Path) -> bool:
    """Whether the open ``handle`` is still the file at ``path`` (not removed meanwhile)."""
    try:
        here, there = os.fstat(handle.fileno()), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _release(handle) -> None:
    """Unlocks and closes an in-flight file's handle."""
    with contextlib.suppress(OSError):
        locks.unlock(handle)
    handle.close()


def _parse(text: str) -> Tuple[List[Dict[str, Any]], List[str]]:
    """The records in a spool file's ``text``, and the lines that hold none (see `Spool.load`)."""
    records: List[Dict[str, Any]] = []
    unreadable: List[str] = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            pass
        else:
            if isinstance(value, dict):
                records.append(value)
            else:  # JSON, but no record could be a list or a number: kept as such
                unreadable.append(line)
            continue
        torn, record = _split_torn(line)
        unreadable.append(torn)
        if record is not None:
            records.append(record)
    return records, unreadable


def _split_torn(line: str) -> Tuple[str, Optional[Dict[str, Any]]]:
    """A line that is not JSON: (its torn part, the whole record that ends it, if any).

    Older versions appended after a torn line without a newline, so such a line
    may end with a complete record; it starts at a ``{"`` and runs to the end.
    """
    decoder = json.JSONDecoder()
    start = line.find('{"', 1)
    while start != -1:
        try:
            record, end = decoder.raw_decode(line, start)
        except json.JSONDecodeError:
            record, end = None, -1
        whole = end == len(line) and isinstance(record, dict)
        if whole and {"id", "type", "experiment"} <= set(record):
            return line[:start], record
        start = line.find('{"', start + 1)
    return line, None
