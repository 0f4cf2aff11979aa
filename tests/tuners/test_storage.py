"""State files survive a process killed while it writes them."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from metanas.tuners import storage
from metanas.tuners.storage import save_json_atomically

# The child loads the module alone: importing the metanas package imports
# TensorFlow, seconds per child.
WRITER = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("storage", sys.argv[2])
storage = importlib.util.module_from_spec(spec)
spec.loader.exec_module(storage)
save_json_atomically = storage.save_json_atomically
path = sys.argv[1]
versions = [{"version": v, "payload": [v] * 400_000} for v in range(2)]
save_json_atomically(path, versions[0])
print("ready", flush=True)
i = 0
while True:
    i += 1
    save_json_atomically(path, versions[i % 2])
"""


def test_a_writer_killed_mid_write_leaves_a_whole_file(tmp_path):
    # Measured once: the same loop with keras-tuner's open("w")-then-write
    # writer left a truncated file on 8 of these 8 kills.
    path = tmp_path / "oracle.json"
    delays = np.random.default_rng(0).uniform(0.0, 0.3, size=8)
    for delay in delays:
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), storage.__file__], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout.readline().strip() == "ready"
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        state = json.loads(path.read_text())  # never empty or truncated
        assert len(state["payload"]) == 400_000 and set(state["payload"]) == {state["version"]}
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "oracle.json"]
    assert len(leftovers) <= len(delays)  # at most one temporary file per kill
    assert all(name.startswith("oracle.json.") and name.endswith(".tmp") for name in leftovers)


def test_a_state_reaches_the_disk_before_it_replaces_the_old_one(tmp_path, monkeypatch):
    # Power loss: a rename can be committed before the data it names, leaving an
    # empty file where the old state was. The data are fsync'd before the rename,
    # and the directory (the rename itself) after it.
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    def replace(source, target):
        events.append(("replace", str(target)))
        real_replace(source, target)

    monkeypatch.setattr(storage.os, "fsync", fsync)
    monkeypatch.setattr(storage.os, "replace", replace)
    path = tmp_path / "oracle.json"
    save_json_atomically(path, {"trials": 3})
    assert [kind for kind, _ in events] == ["fsync", "replace", "fsync"]
    assert events[0][1].startswith(str(path) + ".") and events[0][1].endswith(".tmp")
    assert events[1][1] == str(path) and events[2][1] == str(tmp_path)
    assert json.loads(path.read_text()) == {"trials": 3}


def test_a_file_system_that_cannot_sync_still_saves_and_a_full_disk_still_fails(
        tmp_path, monkeypatch):
    # CIFS/SMB shares, VirtualBox shared folders, some FUSE mounts refuse fsync
    # with EINVAL: every save failed there (a review's finding).
    import errno

    failure = []

    def fsync(descriptor):
        raise OSError(failure[0], os.strerror(failure[0]))

    monkeypatch.setattr(storage.os, "fsync", fsync)
    path = tmp_path / "oracle.json"
    failure.append(errno.EINVAL)
    save_json_atomically(path, {"trials": 1})
    assert json.loads(path.read_text()) == {"trials": 1}
    failure[0] = errno.ENOSPC
    with pytest.raises(OSError, match="could not save .*oracle.json"):
        save_json_atomically(path, {"trials": 2})
    assert json.loads(path.read_text()) == {"trials": 1}


def test_a_state_that_cannot_be_written_keeps_the_old_file(tmp_path):
    path = tmp_path / "trial.json"
    save_json_atomically(path, {"score": 1.0})
    try:
        save_json_atomically(path, {"score": object()})
    except TypeError as error:
        assert "not JSON serializable" in str(error)
    else:
        raise AssertionError("an unserialisable state was written")
    assert json.loads(path.read_text()) == {"score": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["trial.json"]


def test_a_state_file_that_cannot_be_saved_is_named_with_what_to_do(tmp_path, monkeypatch):
    import errno

    import pytest

    path = tmp_path / "oracle.json"
    save_json_atomically(path, {"v": 1})

    class FullDisk:  # the injected fault: the disk fills during the write
        def __init__(self, name, *args, **kwargs):
            self.name = name
            open(name, "w").close()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(storage, "open", FullDisk, raising=False)
    # It was a bare "[Errno 28] No space left on device", naming no file.
    with pytest.raises(OSError, match=re.escape(f"could not save {path} (No space left on device)") + ".*"
                                      "resume with overwrite=False") as caught:
        save_json_atomically(path, {"v": 2})
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["oracle.json"]  # no temporary file left
    with pytest.raises(FileNotFoundError, match=re.escape(f"could not save {tmp_path}/gone/")):
        save_json_atomically(tmp_path / "gone" / "trial.json", {})


def test_a_directory_another_search_holds_is_refused_and_one_without_locks_is_warned(
        tmp_path, monkeypatch):
    import errno
    import fcntl

    import pytest

    other = os.open(tmp_path / storage.LOCK_FILE, os.O_RDWR | os.O_CREAT)
    fcntl.flock(other, fcntl.LOCK_EX)  # as another process's search holds it
    with pytest.raises(RuntimeError, match=re.escape(
            f"another process is searching in {tmp_path}; a second search would overwrite")):
        with storage.searching_in(str(tmp_path)):
            pass
    with pytest.raises(RuntimeError, match="overwrite=True would delete its trials"):
        storage.check_no_search_in(str(tmp_path))
    os.close(other)  # that search ended
    with storage.searching_in(str(tmp_path)), storage.searching_in(str(tmp_path)):
        storage.check_no_search_in(str(tmp_path))  # this process's own: shared, not refused
    assert storage._HELD == {}

    def no_locks(fd, operation):  # the injected fault: NFS without lockd
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.warns(UserWarning, match="could not lock .*two searches there would overwrite"):
        with storage.searching_in(str(tmp_path)):  # searches, unguarded, rather than refuse
            pass
