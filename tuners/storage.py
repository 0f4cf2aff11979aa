"""Atomic writes for a search's state files and checkpoints, and one search per directory.

keras-tuner writes ``oracle.json``, ``trial.json`` and ``tuner0.json`` by
opening the file for writing and writing into it, so a process killed in the
middle leaves an empty or truncated file and the search cannot be resumed.
metanas writes a sibling temporary file and renames it over the old one: a
rename within one directory is atomic on POSIX and Windows, so a reader (or a
restarted search) sees the old state or the new one, never half of it. A
trial's best-epoch checkpoint is written the same way (`save_weights_atomically`).

Two processes searching in one project directory would number their trials
alike and overwrite each other's files; `searching_in` holds a lock
on `LOCK_FILE` in the directory while a search runs, and `check_no_search_in`
refuses to wipe a directory another process searches in (`metanas.locks`:
``flock`` on POSIX, ``msvcrt.locking`` on Windows; on remote paths and file
systems without locks, nothing is locked).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import threading
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional, Union

from metanas import locks


__all__ = ["save_json_atomically", "save_weights_atomically", "searching_in",
           "check_no_search_in", "disk_failure", "is_remote"]

# Errors of the disk, not of the model: a trial that meets one did not fail.
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
_DISK_MESSAGES = tuple(os.strerror(code) for code in sorted(_DISK_ERRNOS))

#: The file a search locks in its project directory.
LOCK_FILE = ".metanas_search.lock"

# Directories this process searches in: real path -> [file descriptor, count].
# Searches of one process share the lock (a notebook re-running a cell).
_HELD: Dict[str, List[int]] = {}
_HELD_LOCK = threading.Lock()


def is_remote(path: Any) -> bool:
    """Whether ``path`` is a URL (``gs://...``) that keras-tuner writes through
    TensorFlow, where nothing is renamed, locked or marked."""
    return "://" in str(path)


def _local_dir(project_dir: str) -> Optional[str]:
    """The real path of a local project directory; None where nothing is locked."""
    if is_remote(project_dir):
        return None
    if not locks.AVAILABLE:
        locks.unguarded("two searches in one project directory would overwrite each other's "
                        "trials")
        return None
    path = os.path.realpath(str(project_dir))
    return path if os.path.isdir(path) else None


def _try_lock(path: str, doing: str) -> Optional[int]:
    """A descriptor holding ``path``'s lock; None where locks do not work.

    Raises:
        RuntimeError: Another process holds it.
    """
    fd = os.open(os.path.join(path, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        locks.lock(fd, wait=False)
    except BlockingIOError:
        os.close(fd)
        raise RuntimeError(
            f"another process is searching in {path}; {doing}. Wait for it to end, or use "
            "another directory or project_name (the workers of a distributed search share "
            "the chief's directory through KERASTUNER_TUNER_ID and take no lock)."
        ) from None
    except OSError as error:  # a file system without locks (some NFS, FUSE)
        os.close(fd)
        warnings.warn(f"could not lock {path} ({error}); two searches there would "
                      "overwrite each other's trials", stacklevel=3)
        return None
    return fd


@contextlib.contextmanager
def searching_in(project_dir: str) -> Iterator[None]:
    """Holds ``project_dir`` for a search; RuntimeError if another process does."""
    path = _local_dir(project_dir)
    if path is None:
        yield
        return
    with _HELD_LOCK:
        held = _HELD.get(path)
        if held is None:
            held = _HELD[path] = [
                _try_lock(path, "a second search would overwrite its trials"), 0]
        held[1] += 1
    try:
        yield
    finally:
        with _HELD_LOCK:
            held[1] -= 1
            if held[1] == 0:
                del _HELD[path]
                if held[0] is not None:
                    _release(held[0])


def check_project_path(directory: str, project_name: str) -> None:
    """ValueError if a local search's ``directory/project_name`` cannot be a folder.

    Checked before keras-tuner creates it, whose error would be TensorFlow's
    (``FailedPreconditionError``) rather than one that names the setting.
    """
    if is_remote(directory):
        return
    path = os.path.abspath(os.path.join(directory, project_name))
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return
        path = parent
    if not os.path.isdir(path):
        raise ValueError(
            f"the search's folder {os.path.join(directory, project_name)!r} (directory="
            f"{directory!r}, project_name={project_name!r}) cannot be created: {path!r} is a "
            "file; directory and project_name must name a folder."
        )


def check_no_search_in(project_dir: str) -> None:
    """RuntimeError if another process searches in ``project_dir`` (before wiping it)."""
    path = _local_dir(project_dir)
    if path is None or path in _HELD:
        return
    fd = _try_lock(path, "overwrite=True would delete its trials")
    if fd is not None:
        _release(fd)


def _release(fd: int) -> None:
    """Unlocks and closes a lock's descriptor (Windows asks to unlock before closing)."""
    with contextlib.suppress(OSError):
        locks.unlock(fd)
    os.close(fd)


def disk_failure(error: BaseException) -> Optional[BaseException]:
    """The full or read-only disk behind ``error`` (or what it was raised from), or None.

    An `OSError` with ``ENOSPC``, ``EDQUOT`` or ``EROFS``, or an error of another
    library (TensorFlow's file writes) whose message is one of theirs.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in _DISK_ERRNOS:
            return error
        if any(message in str(error) for message in _DISK_MESSAGES):
            return error
        error = error.__cause__ or error.__context__
    return None


def save_json_atomically(
    path: str, obj: Any, *, default: Optional[Callable[[Any], Any]] = None
) -> str:
    """Writes ``obj`` as JSON to ``path`` so that a crash never truncates it.

    Remote paths (``gs://...``) are written by keras-tuner as before: object
    stores replace whole objects, so they are atomic already.

    Args:
        path: The JSON file to (over)write.
        obj: A JSON-serialisable object.
        default: As for `json.dumps`: turns what JSON cannot hold into what it can.

    Returns:
        The JSON text written, like ``keras_tuner``'s ``utils.save_json``.
    """
    path = str(path)
    text = json.dumps(obj, default=default)
    if is_remote(path):
        from keras_tuner.src.backend import io as kt_io  # imports TensorFlow

        with kt_io.File(path, "w") as handle:
            handle.write(text)
        return text
    _replace_with(path, text.encode("utf-8"))
    return text


def save_weights_atomically(model: Any, path: str) -> None:
    """Saves a Keras model's weights to ``path`` (``.weights.h5``), as
    ``model.save_weights`` does, so that a failed write keeps the previous file.

    Keras writes the HDF5 file in place. When the disk fills up in the middle,
    the file is left half written and HDF5 keeps its objects open, unable to
    flush them; at exit HDF5 closes them and the process crashes (a
    segmentation fault after the error was reported; keras 3.12, h5py 3.14).
    Here Keras's own writer builds the file in memory, and it is written as a
    sibling file renamed over the old one: a full disk is one `OSError` from
    that write, HDF5 is left clean, and the checkpoint on disk is the previous
    one. Remote paths, and weights that memory could not hold twice (Keras's
    own test for its ``.keras`` files), are left to Keras.

    Raises:
        ValueError: The model is not built (as Keras raises).
        OSError: The file could not be written; the message names it.
    """
    from keras.src.saving import saving_lib  # Keras's writer; keras is pinned <3.13

    path = str(path)
    if is_remote(path) or not model.built or not saving_lib.is_memory_sufficient(model):
        # Keras's own: remote, its error for an unbuilt model, or weights too
        # large to hold twice in memory (Keras's own test for its .keras files).
        model.save_weights(path)
        return
    buffer = io.BytesIO()
    store = saving_lib.H5IOStore(buffer, mode="w")
    try:
        saving_lib._save_state(model, weights_store=store, assets_store=None,
                               inner_path="", visited_saveables=set())
    finally:
        store.close()
    _replace_with(path, buffer.getbuffer())


def _replace_with(path: str, data: Union[bytes, memoryview]) -> None:
    """Writes ``data`` to a sibling temporary file and renames it over ``path``.

    The file's data reach the disk (``fsync``) before the rename, and the rename
    before this returns (the directory's ``fsync``, where the system has one), so
    that after a power loss ``path`` holds the old data or the new, never an empty
    or partial file (a journal may commit the rename before the data otherwise).
    """
    # Unique per process and thread: the chief saves from gRPC threads too.
    temporary = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            _sync(handle.fileno())
        os.replace(temporary, path)
        _sync_directory(os.path.dirname(os.path.abspath(path)))
    except OSError as error:  # a full disk, a read-only directory: say which file
        if error.errno is None:
            raise
        raise type(error)(
            error.errno, f"could not save {path} ({error.strerror or error}); any earlier "
            "version of it is intact, and the trials ended so far are kept: fix the cause "
            "and resume with overwrite=False", path) from error
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


#: What a file system that cannot sync says (CIFS/SMB shares, VirtualBox shared
#: folders, some FUSE mounts): the write stands, without the sync.
_CANNOT_SYNC = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF}


def _sync(descriptor: int) -> None:
    """``fsync``, where the file system can; a full disk or an I/O error still raises."""
    try:
        os.fsync(descriptor)
    except OSError as error:
        if error.errno not in _CANNOT_SYNC:
            raise


def _sync_directory(directory: str) -> None:
    """Makes a rename in ``directory`` durable (POSIX; Windows has no such call)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:  # Windows cannot open a directory; the rename is done anyway
        return
    try:
        os.fsync(descriptor)
    except OSError:  # some file systems refuse fsync on a directory: best effort
        pass
    finally:
        os.close(descriptor)
