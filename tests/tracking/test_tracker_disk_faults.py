"""The tracker when disks fail: a search id file the disk cuts short.

A full disk is injected at the file's own writes (`FullDisk`).
"""

import builtins
import io
import json
import types

import pytest

from metanas.tracking import MlflowTracker
from metanas.tracking.tracker import SEARCH_FILE
from tests.tracking.helpers import fill_disk_once


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
