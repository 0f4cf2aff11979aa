"""The tracker when disks fail: a spool that cannot be written, a SQLite store
that cannot be created, a search id file the disk cuts short.

Unwritable places are real: a folder under a regular file, a folder the
process may not write to. A full disk is injected at the file's own writes
(`FullDisk`).
"""

import builtins
import io
import json
import logging
import os
import pathlib
import shutil
import subprocess
import time
import types

import keras
import keras_tuner
import pytest
from mlflow.tracking import MlflowClient

from metanas import cli
from metanas.tracking import MlflowTracker
from metanas.tracking.server import free_port
from metanas.tracking.spool import Spool
from metanas.tracking.tracker import SEARCH_FILE, SPOOL_DIRNAME, StoreUnwritable
from metanas.tuners import RandomSearch
from tests.tracking.helpers import X, Y, TinyModel, check_search_logged, fill_disk_once


def no_faults():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("fault", "none")
    return hp


# ---------------------------------------------------- a spool that cannot be written
class Unblock(keras.callbacks.Callback):
    """Removes ``blocker`` (a file where the spool's folder must go) after ``after`` trainings."""

    trainings = 0  # on the class: keras-tuner gives each trial a deep copy of the callbacks

    def __init__(self, blocker, after):
        super().__init__()
        self.blocker, self.after = blocker, after
        Unblock.trainings = 0

    def on_train_end(self, logs=None):
        Unblock.trainings += 1
        if Unblock.trainings == self.after:
            self.blocker.unlink()


def blocked_search(tmp_path, trials, callbacks=()):
    blocker = tmp_path / "blocker"
    server_down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    # A spool folder that can be created when the tracker is made (one that
    # cannot is refused then), and that a file blocks from the search's start.
    tracker = MlflowTracker(tracking_uri=server_down, spool_dir=blocker / "spool")
    blocker.write_text("a file where the spool's folder should be")
    tuner = RandomSearch(
        TinyModel(), objective="loss", max_trials=trials, seed=3,
        directory=str(tmp_path / "runs"), project_name="p", hyperparameters=no_faults(),
        tracking=tracker,
    )
    tuner.search(X, Y, epochs=1, verbose=0, callbacks=list(callbacks))
    return tuner, blocker / "spool"


def test_records_the_spool_cannot_take_are_kept_and_spooled_when_it_can(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="metanas")
    blocker = tmp_path / "blocker"
    tuner, spool_dir = blocked_search(tmp_path, trials=3, callbacks=[Unblock(blocker, 2)])
    assert caplog.text.count("could not spool a tracking record") == 1  # not one per record
    assert "lost" not in caplog.text
    # Was: the search's start and trial 0 dropped ("tracker MlflowTracker failed ...").
    store = f"sqlite:///{tmp_path}/mlflow.db"
    assert cli.main(["tracking", "sync", str(spool_dir), "--tracking-uri", store]) == 0
    check_search_logged(store, "p", tuner, epochs=1)


def test_records_neither_sent_nor_spooled_are_named_at_the_end(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="metanas")
    tuner, _ = blocked_search(tmp_path, trials=2)  # the search itself does not fail
    assert len(tuner.oracle.trials) == 2
    lost = [r.getMessage() for r in caplog.records if "are lost" in r.getMessage()]
    assert len(lost) == 1, caplog.text
    assert lost[0].startswith("6 tracking record(s) are lost (the runs of trials 0, 1 and "
                              "4 update(s) of the search's parent run)")
    assert "Not a directory" in lost[0] and "Connection refused" in lost[0]
    assert tuner.tracker.lost == 6


# ------------------------------------------------------- a store that cannot be created
@pytest.fixture
def unwritable_dir(tmp_path):
    """A real folder this process may not create files in."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    # root writes anywhere permissions allow; procfs refuses new files to root too.
    if os.access("/proc/sys", os.W_OK) or not os.path.isdir("/proc/sys"):
        pytest.skip("no folder unwritable to root here")
    yield pathlib.Path("/proc/sys")


def test_a_sqlite_store_that_cannot_be_created_sends_records_to_the_spool_at_once(
        tmp_path, unwritable_dir, monkeypatch, caplog, capsys):
    caplog.set_level(logging.WARNING, logger="metanas")
    bad = f"sqlite:///{unwritable_dir}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", bad)
    started = time.monotonic()
    tuner = RandomSearch(TinyModel(), objective="loss", max_trials=2, seed=3,
                         directory=str(tmp_path / "runs"), project_name="p",
                         hyperparameters=no_faults())
    tuner.search(X, Y, epochs=1, verbose=0)
    MlflowTracker(tracking_uri=bad)  # no wait, no error: records will wait
    assert time.monotonic() - started < 20  # was: ~100 s per try, twice
    warned = [r.getMessage() for r in caplog.records if "cannot be written" in r.getMessage()]
    assert len(warned) == 1 and f"{unwritable_dir}/mlflow.db" in warned[0]
    assert "unavailable" not in caplog.text  # that one warning says it all
    spool_dir = tmp_path / "runs" / SPOOL_DIRNAME / "p"
    # The search's begin and end, and a trial and a progress record per trial.
    assert len(Spool.read(spool_dir / "tuner0.pending.jsonl")) == 6
    capsys.readouterr()
    assert cli.main(["tracking", "sync", str(spool_dir), "--tracking-uri", bad]) == 2
    assert "cannot be written" in capsys.readouterr().err
    good = f"sqlite:///{tmp_path}/mlflow.db"
    assert cli.main(["tracking", "sync", str(spool_dir), "--tracking-uri", good]) == 0
    check_search_logged(good, "p", tuner, epochs=1)


def test_a_sqlite_store_root_may_not_create_costs_no_wait(tmp_path, capsys):
    # os.access says yes to root in /proc, where no file can be created: MLflow
    # then retried creating the store for ~100 s (9 warnings), in the tracker's
    # constructor and in `sync`, before failing.
    if not os.path.isdir("/proc") or os.path.exists("/proc/metanas-x.db"):
        pytest.skip("no procfs here")
    bad_file = "/proc/metanas-x.db"
    bad = f"sqlite:///{bad_file}"
    started = time.monotonic()
    tracker = MlflowTracker(tracking_uri=bad)  # no wait, no error: records would wait
    with pytest.raises(StoreUnwritable, match=bad_file):
        tracker.client
    capsys.readouterr()
    assert cli.main(["tracking", "sync", str(tmp_path), "--tracking-uri", bad]) == 2
    assert f"{bad_file} does not exist and its folder /proc" in capsys.readouterr().err
    assert time.monotonic() - started < 10


@pytest.fixture
def store_in_read_only_dir(tmp_path):
    """An MLflow SQLite store in a real folder where this process may create no file."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    store_file = folder / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{store_file}").search_experiments()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield store_file
        folder.chmod(0o755)
        return
    # root writes anywhere permissions allow, but not in an immutable folder.
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("no folder unwritable to root here (chattr +i)")
    try:
        yield store_file
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_an_existing_sqlite_store_in_a_read_only_folder_sends_records_to_the_spool(
        tmp_path, store_in_read_only_dir, caplog, capsys):
    # SQLite writes its journal beside the file: each write failed ("unable to
    # open database file", a warning per record), and `sync` kept them waiting.
    caplog.set_level(logging.WARNING, logger="metanas")
    store_file = store_in_read_only_dir
    store = f"sqlite:///{store_file}"
    tuner = RandomSearch(TinyModel(), objective="loss", max_trials=1, seed=3,
                         directory=str(tmp_path / "runs"), project_name="p",
                         hyperparameters=no_faults(),
                         tracking=MlflowTracker(tracking_uri=store))
    tuner.search(X, Y, epochs=1, verbose=0)
    warned = [r.getMessage() for r in caplog.records if "cannot be written" in r.getMessage()]
    assert len(warned) == 1 and str(store_file) in warned[0] and "journal" in warned[0]
    assert "unavailable" not in caplog.text
    spool_dir = tmp_path / "runs" / SPOOL_DIRNAME / "p"
    assert len(Spool.read(spool_dir / "tuner0.pending.jsonl")) == 4
    capsys.readouterr()
    assert cli.main(["tracking", "sync", str(spool_dir), "--tracking-uri", store]) == 2
    assert str(store_file) in capsys.readouterr().err


# ------------------------------------------------------------------ search id
def test_the_search_id_file_is_never_left_torn(tmp_path, monkeypatch):
    project = tmp_path / "p"
    tuner = types.SimpleNamespace(project_dir=str(project))
    tracker = MlflowTracker()
    with monkeypatch.context() as patch:
        fill_disk_once(patch, [builtins, io], SEARCH_FILE)  # pathlib writes through io.open
        with pytest.raises(OSError, match="No space left"):
            tracker._read_search_id(tuner)
    # Was: half a JSON file, which a resumed search ignores (a new parent run).
    assert not project.joinpath(SEARCH_FILE).exists()
    assert list(project.iterdir()) == []
    search_id = tracker._read_search_id(tuner)
    assert json.loads(project.joinpath(SEARCH_FILE).read_text()) == {
        "search_id": search_id, "experiments": [tracker.experiment_name]}
