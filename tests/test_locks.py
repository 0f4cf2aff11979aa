"""metanas.locks: the file locks of the tracking spool and of a search's folder,
on POSIX (fcntl), on Windows's API (msvcrt, emulated here), and where there is none."""

import contextlib
import errno
import fcntl
import os
import pathlib
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from metanas import locks
from metanas.tracking.spool import Spool

ROOT = pathlib.Path(__file__).resolve().parents[1]


class EmulatedMsvcrt:
    """``msvcrt.locking``'s contract on Linux, for the code metanas runs on Windows.

    Like Windows's byte-range locks (and unlike POSIX record locks), Linux's
    open-file-description locks belong to one open of a file: two opens in one
    process exclude each other. ``locking`` locks ``nbytes`` from the file's
    current position, as msvcrt does, so a lock taken anywhere but at the lock
    byte would not exclude one taken there. As on Windows, an open that locks a
    range it holds already, or unlocks one it does not hold, gets EACCES.
    Windows's locks are also mandatory (others cannot read the bytes); that is
    not emulated (metanas locks a byte beyond its data). Windows locks a file
    opened to read only, Linux write-locks only a writable open: such an open's
    lock is held by a writable twin of it, until it is unlocked.
    """

    LK_UNLCK, LK_LOCK, LK_NBLCK, LK_RLCK, LK_NBRLCK = 0, 1, 2, 3, 4

    def __init__(self) -> None:
        self.calls = []
        self.twins = {}
        self.held = set()  # (descriptor, start, size)

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        start = os.lseek(fd, 0, os.SEEK_CUR)
        self.calls.append((mode, start, nbytes))
        held = (fd, start, nbytes) in self.held
        if held != (mode == self.LK_UNLCK):  # a second lock, or an unlock of nothing
            raise OSError(errno.EACCES, "Permission denied")
        self._apply(fd, mode, start, nbytes)
        if mode == self.LK_UNLCK:
            self.held.discard((fd, start, nbytes))
        else:
            self.held.add((fd, start, nbytes))

    def _apply(self, fd: int, mode: int, start: int, nbytes: int) -> None:
        kind = fcntl.F_UNLCK if mode == self.LK_UNLCK else fcntl.F_WRLCK
        request = struct.pack("hhqqi4x", kind, os.SEEK_SET, start, nbytes, 0)  # struct flock
        lock_fd = fd
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
            if fd not in self.twins:
                self.twins[fd] = os.open(f"/proc/self/fd/{fd}", os.O_RDWR)
            lock_fd = self.twins[fd]
            if mode == self.LK_UNLCK:
                os.close(self.twins.pop(fd))  # its locks go with it
                return
        try:
            fcntl.fcntl(lock_fd, fcntl.F_OFD_SETLK, request)
        except OSError as error:
            if lock_fd != fd and fd in self.twins:
                os.close(self.twins.pop(fd))
            if error.errno in (errno.EAGAIN, errno.EACCES):
                raise OSError(errno.EACCES, "Permission denied") from None  # as msvcrt says
            raise


@pytest.fixture(params=["fcntl", "msvcrt"])
def backend(request, monkeypatch):
    """Each test under this platform's locks and under Windows's (emulated)."""
    if request.param == "msvcrt":
        emulated = EmulatedMsvcrt()
        monkeypatch.setattr(locks, "msvcrt", emulated)
        monkeypatch.setattr(locks, "BACKEND", "msvcrt")
        return emulated
    assert locks.BACKEND == "fcntl" and locks.AVAILABLE
    return None


def test_two_opens_of_a_file_exclude_each_other_until_the_first_lets_go(tmp_path, backend):
    path = tmp_path / "lock"
    path.write_bytes(b"records\n")
    with open(path, "a+b", buffering=0) as first, open(path, "a+b", buffering=0) as second:
        first.seek(3)
        locks.lock(first)
        assert first.tell() == 3  # the file's position is put back
        second.seek(0, os.SEEK_END)  # elsewhere in the file: still the same lock
        with pytest.raises(BlockingIOError):
            locks.lock(second, wait=False)
        locks.unlock(first)
        locks.lock(second, wait=False)
        with pytest.raises(BlockingIOError):
            locks.lock(first.fileno(), wait=False)  # a descriptor does as well
        locks.unlock(second)
    if backend is not None:  # every lock and unlock on the lock byte, beyond the data
        assert {(start, size) for _, start, size in backend.calls} == {(locks.LOCK_OFFSET, 1)}
        # Tries, never msvcrt's own waiting mode (10 s, then an error, for each held file).
        assert {mode for mode, _, _ in backend.calls} == {backend.LK_NBLCK, backend.LK_UNLCK}


def test_a_waiting_lock_is_taken_once_the_holder_lets_go(tmp_path, backend):
    path = tmp_path / "lock"
    with open(path, "a") as holder, open(path, "a") as waiter:
        locks.lock(holder)
        released = threading.Event()

        def let_go():
            time.sleep(0.3)
            released.set()
            locks.unlock(holder)

        thread = threading.Thread(target=let_go)
        thread.start()
        locks.lock(waiter)  # waits (on Windows: beyond msvcrt's own 10 s, by polling)
        assert released.is_set()
        thread.join()
        locks.unlock(waiter)


def test_the_spool_leaves_a_live_search_s_records_in_flight_alone(tmp_path, backend):
    records = [{"id": "a", "type": "trial", "experiment": "e", "key": "k"}]
    mine, other = Spool(tmp_path, "tuner0"), Spool(tmp_path, "tuner0")
    with mine.write_ahead(records) as ahead:
        ahead.keep = True  # only in memory but for its in-flight file: held
    assert other.recover_inflight() == 0
    with other.locked():
        with pytest.raises(BlockingIOError):  # one replayer at a time
            with open(tmp_path / ".lock", "a") as handle:
                locks.lock(handle, wait=False)
    mine.drop_inflight()
    assert other.recover_inflight() == 1
    assert Spool.read(other.path) == records
    other.drop_inflight()
    assert not list(tmp_path.glob("*.inflight.jsonl"))


def test_a_killed_process_holds_no_lock(tmp_path):
    path = tmp_path / "lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from metanas import locks
            handle = open({str(path)!r}, "a")
            locks.lock(handle)
            print("held", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        with open(path, "a") as handle:
            with pytest.raises(BlockingIOError):
                locks.lock(handle, wait=False)
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=30)
            locks.lock(handle, wait=False)
    finally:
        holder.kill()
        holder.wait()


# A platform without fcntl nor msvcrt: importing either fails, as fcntl does on
# Windows (metanas's spool imported it unguarded: every tracked search failed).
WITHOUT_LOCKS = """
import importlib.abc, sys

class NoSuchModule(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name in ("fcntl", "msvcrt"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoSuchModule())
"""

TRACKED_SEARCH = """
import keras_tuner
from metanas import locks
from metanas.tuners import RandomSearch

class Scored(RandomSearch):
    def run_trial(self, trial, *args, **kwargs):
        return float(trial.hyperparameters.get("u"))

tuner = Scored(lambda hp: hp.Int("u", 1, 50), objective=keras_tuner.Objective("score", "max"),
               max_trials=3, seed=0, directory=sys.argv[1], project_name="p")
tuner.search()
print(locks.BACKEND, "fcntl" in sys.modules, len(tuner.oracle.trials))
"""


def test_a_tracked_search_runs_where_there_is_no_lock(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    done = subprocess.run([sys.executable, "-c", WITHOUT_LOCKS + TRACKED_SEARCH, str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-3:] == ["none", "False", "3"]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store)
    (experiment,) = [e for e in client.search_experiments() if e.name != "Default"]
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 4  # the search and 3 trials
    assert not list(tmp_path.rglob("*.jsonl"))  # nothing left waiting in the spool


def test_the_end_of_a_search_removes_the_empty_in_flight_files_where_open_files_stay(
        tmp_path, backend, monkeypatch):
    # Windows removes no file that a process holds open, and the spool holds
    # each in-flight file open (and locked) while it checks that it is empty.
    unlink = pathlib.Path.unlink

    def unlink_unless_open(path, *args, **kwargs):
        target, held = os.path.realpath(path), False
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):  # a descriptor closed meanwhile
                held = held or os.readlink(f"/proc/self/fd/{fd}") == target
        if held:
            raise PermissionError(errno.EACCES, "in use by a process", str(path))
        return unlink(path, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "unlink", unlink_unless_open)
    record = {"id": "a", "type": "trial", "experiment": "e", "key": "k"}
    mine, killed, live = (Spool(tmp_path, f"tuner{i}") for i in range(3))
    for spool in (mine, killed, live):
        with spool.write_ahead([record]) as ahead:
            ahead.keep = spool is live  # it holds its file: records only it has
    # killed: between two sends, its file empty and held by no one.
    mine.drop_inflight()
    assert not mine.inflight.exists()  # was left in place: its own handle held it open
    assert not killed.inflight.exists()
    assert Spool.read(live.inflight) == [record]  # a live search's: never touched
    live.drop_inflight()
    assert [p.name for p in tmp_path.glob("*.inflight.jsonl")] == [live.inflight.name]
