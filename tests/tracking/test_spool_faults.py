"""The spool on a failing disk: a write the disk cuts short, a torn line, a failed rewrite.

Full disks are injected at the spool's own file writes (`FullDisk`): the file
takes part of what is written, then fails with ENOSPC, as a real full disk does.
"""

import json

import pytest
from mlflow.tracking import MlflowClient

from metanas import cli
from metanas.tracking import spool as spool_module
from metanas.tracking.spool import UNREADABLE_SUFFIX, Spool
from metanas.tracking.tracker import SPOOL_DIRNAME
from tests.tracking.helpers import fill_disk_once


def record(n, **extra):
    return {"id": f"r{n}", "type": "search_begin", "key": f"s{n}/search", "name": f"s{n}",
            "start_ms": 1, "reopen": True, "params": {"n": n}, "tags": {}, "experiment": "e",
            **extra}


def test_an_append_a_full_disk_cuts_short_is_cut_back_off(tmp_path, monkeypatch):
    spool = Spool(tmp_path / "spool")
    spool.append(record(1))
    fill_disk_once(monkeypatch, [spool_module], ".pending.jsonl")
    with pytest.raises(OSError, match="No space left"):
        spool.append(record(2))
    spool.append(record(3))  # the disk has room again
    # Was: record 3 glued to the torn half of record 2, both unreadable.
    assert Spool.read(spool.path) == [record(1), record(3)]
    assert Spool.load(spool.path) == ([record(1), record(3)], [])
    assert spool.path.read_bytes().endswith(b"\n")


def test_an_append_after_a_torn_line_starts_a_line_of_its_own(tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.append(record(1))
    with open(spool.path, "a", encoding="utf-8") as handle:  # a crash mid-write
        handle.write(json.dumps(record(2))[:25])
    spool.append(record(3))
    assert Spool.read(spool.path) == [record(1), record(3)]  # was: record 3 lost
    assert spool.path.read_text().splitlines() == [
        json.dumps(r, sort_keys=True) if isinstance(r, dict) else r
        for r in (record(1), json.dumps(record(2))[:25], record(3))]
    records, unreadable = Spool.load(spool.path)
    assert records == [record(1), record(3)]
    assert unreadable == [json.dumps(record(2))[:25]]


def test_a_failed_rewrite_keeps_the_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    spool = Spool(tmp_path / "spool")
    spool.append(record(1))
    before = spool.path.read_bytes()
    fill_disk_once(monkeypatch, [spool_module], ".tmp")
    with pytest.raises(OSError, match="No space left"):
        Spool.rewrite(spool.path, [record(1), record(2)])
    assert spool.path.read_bytes() == before
    assert sorted(p.name for p in spool.directory.iterdir()) == [".lock", spool.path.name]


def test_sync_keeps_unreadable_lines_and_says_so(tmp_path, capsys):
    directory = tmp_path / "runs" / SPOOL_DIRNAME / "p"
    spool = Spool(directory)
    spool.append(record(1))
    torn = json.dumps(record(2), sort_keys=True)[:30]
    # An older metanas appended record 3 right after a write the disk cut short.
    with open(spool.path, "a", encoding="utf-8") as handle:
        handle.write(torn + json.dumps(record(3), sort_keys=True) + "\n")
    store = f"sqlite:///{tmp_path}/mlflow.db"
    assert cli.main(["tracking", "sync", str(tmp_path / "runs"), "--tracking-uri", store]) == 1
    out, err = capsys.readouterr()
    # Was: "sent 1 record(s); 0 still waiting; 0 rejected", and the line deleted.
    assert "sent 2 record(s); 0 still waiting; 0 rejected; 1 unreadable line(s) kept" in out
    assert "hold no readable record" in err
    side = directory / f"tuner0.pending.jsonl{UNREADABLE_SUFFIX}"
    assert side.read_text() == torn + "\n"
    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs([client.get_experiment_by_name("e").experiment_id])
    assert sorted(run.info.run_name for run in runs) == ["s1", "s3"]
    assert not spool.has_pending()
    # Said again at the next sync: the line is still there for a person to look at.
    assert cli.main(["tracking", "sync", str(tmp_path / "runs"), "--tracking-uri", store]) == 1
    assert "0 still waiting; 0 rejected; 1 unreadable line(s) kept" in capsys.readouterr().out


def test_sync_sets_aside_a_pending_file_of_torn_lines_only(tmp_path, capsys):
    # Was: "kept ... in the *.pending.jsonl.unreadable files", but no such file was
    # made: with no record to send, the replay never ran and the line stayed put.
    directory = tmp_path / "runs" / SPOOL_DIRNAME / "p"
    directory.mkdir(parents=True)
    pending = directory / "tuner0.pending.jsonl"
    pending.write_text('{"broken')
    store = f"sqlite:///{tmp_path}/mlflow.db"
    assert cli.main(["tracking", "sync", str(tmp_path / "runs"), "--tracking-uri", store]) == 1
    out, err = capsys.readouterr()
    assert "sent 0 record(s); 0 still waiting; 0 rejected; 1 unreadable line(s) kept" in out
    assert "*.pending.jsonl.unreadable files of their spool directory" in err
    side = directory / f"tuner0.pending.jsonl{UNREADABLE_SUFFIX}"
    assert side.read_text() == '{"broken\n'  # kept, not dropped
    assert not pending.exists() or Spool.load(pending) == ([], [])
    # Counted once at the next sync: moved, not copied.
    assert cli.main(["tracking", "sync", str(tmp_path / "runs"), "--tracking-uri", store]) == 1
    assert "1 unreadable line(s) kept" in capsys.readouterr().out
    assert side.read_text() == '{"broken\n'
