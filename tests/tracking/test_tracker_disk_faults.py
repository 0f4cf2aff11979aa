"""The tracker when disks fail: a spool that cannot be written, a search id
file the disk cuts short.

Unwritable places are real: a folder under a regular file. A full disk is
injected at the file's own writes (`FullDisk`).
"""

import builtins
import io
import json
import logging
import types

import keras
import keras_tuner
import pytest

from metanas import cli
from metanas.tracking import MlflowTracker
from metanas.tracking.server import free_port
from metanas.tracking.tracker import SEARCH_FILE
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
    blocker.write_text("a file where the spool's folder should be")
    server_down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    tuner = RandomSearch(
        TinyModel(), objective="loss", max_trials=trials, seed=3,
        directory=str(tmp_path / "runs"), project_name="p", hyperparameters=no_faults(),
        tracking=MlflowTracker(tracking_uri=server_down, spool_dir=blocker / "spool"),
    )
    tuner.search(X, Y, epochs=1, verbose=0, callbacks=list(callbacks))
    return tuner, blocker / "spool"


def test_records_the_spool_cannot_take_are_kept_and_spooled_when_it_can(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="metanas")
    blocker = tmp_path / "blocker"
    tuner, spool_dir = blocked_search(tmp_path, trials=3, callbacks=[Unblock(blocker, 2)])
    assert "could not spool a tracking record" in caplog.text
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
    assert json.loads(project.joinpath(SEARCH_FILE).read_text()) == {"search_id": search_id}
