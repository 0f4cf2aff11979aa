"""The spool: tracking records that wait on disk for the tracking server.

Each record is one JSON line with a unique ``id`` (its idempotency key). A
record leaves the spool only after it was applied in full; applying one twice
changes nothing (see `metanas.tracking.records.apply_record`), so a crash
between applying and removing it is harmless. Several processes (the workers
of a distributed search) may share a spool directory: each writes its own
file, and a lock file serialises replays.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pathlib
from typing import Any, Callable, Dict, Iterator, List, Optional

__all__ = ["Spool"]

PENDING_SUFFIX = ".pending.jsonl"
#: Records the server rejected for good (a bad value, not an outage): kept, never dropped.
REJECTED_NAME = "rejected.jsonl"


class Spool:
    """JSON-lines files of pending tracking records under ``directory``.

    Args:
        directory: The spool directory (created on the first write).
        name: This process's file name stem (e.g. the keras-tuner tuner id).
    """

    def __init__(self, directory: os.PathLike, name: str = "tuner0") -> None:
        self.directory = pathlib.Path(directory)
        self.path = self.directory / f"{name}{PENDING_SUFFIX}"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Holds the spool directory's lock (one replayer at a time)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def append(self, record: Dict[str, Any]) -> None:
        """Adds ``record`` to this process's pending file, durably."""
        with self.locked():
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, sort_keys=True) + "\n")
                handle.flush()
                os.fsync(handle.fileno())

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
        """The records of one pending file; a torn last line (a crash mid-write) is
        skipped, and a file another process removed meanwhile holds none."""
        records = []
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        for line in text.splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    @staticmethod
    def rewrite(path: pathlib.Path, records: List[Dict[str, Any]]) -> None:
        """Atomically replaces a pending file's records (removes it when empty)."""
        if not records:
            path.unlink(missing_ok=True)
            return
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def reject(self, record: Dict[str, Any], reason: str) -> None:
        """Keeps a record the server refused for good, with the reason."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / REJECTED_NAME, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"reason": reason, "record": record}, sort_keys=True) + "\n")
