"""Tracking inputs that cannot work: a spool folder that cannot be made, spooled lines
that are no record, an MLFLOW_TRACKING_URI of an unknown scheme, and a tracking
server that is down when a meta-study's plots are logged.

Every place is real: a folder under a regular file, a closed port on 127.0.0.1,
SQLite stores in the test's own folder.
"""

import json
import logging
import os
import re
import time
import warnings

import keras_tuner
import optuna
import pytest
from mlflow.tracking import MlflowClient

from metanas import cli
from metanas.meta.plots import log_meta_study
from metanas.tracking import MlflowTracker
from metanas.tracking import records as rec
from metanas.tracking.server import free_port
from metanas.tracking.spool import REJECTED_NAME, UNREADABLE_SUFFIX, Spool
from metanas.tracking.tracker import SPOOL_DIRNAME
from metanas.tuners import RandomSearch
from tests.tracking.helpers import X, Y, TinyModel, check_search_logged

#: Spooled lines that are JSON but no record metanas can apply.
NOT_RECORDS = ['{"id": "abc", "kind": "nonsense"}', "[1, 2, 3]", '{"no_id": 1}']


def no_faults():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("fault", "none")
    return hp


def a_record(n):
    """A record as a tracker spools it (a search's start)."""
    return {"id": f"r{n}", "type": "search_begin", "key": f"s{n}/search", "name": f"s{n}",
            "start_ms": 1, "reopen": True, "params": {"n": n}, "tags": {}, "experiment": "e",
            "metrics": [["m", 0.5, 1, 0]]}


def listing(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# ------------------------------------------------------------------ 1. spool_dir
@pytest.mark.parametrize("where", ["under_a_file", "dev_null"])
def test_a_spool_dir_that_cannot_be_created_is_a_value_error(tmp_path, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    spool_dir = blocker / "spool" if where == "under_a_file" else "/dev/null/x"
    parent = str(blocker) if where == "under_a_file" else "/dev/null"
    # Was: accepted, and at the end of the search "6 tracking record(s) are lost".
    with pytest.raises(ValueError) as raised:
        MlflowTracker(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", spool_dir=spool_dir)
    assert str(raised.value) == (
        f"spool_dir {str(spool_dir)!r} cannot hold the tracking spool: its parent "
        f"{parent!r} is not a folder; give a folder this process can write in.")
    assert listing(tmp_path) == ["blocker"]  # nothing made, not even the store


def test_a_spool_dir_no_file_can_be_created_in_is_a_value_error(tmp_path):
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
    elif os.access("/proc/sys", os.W_OK) or not os.path.isdir("/proc/sys"):
        pytest.skip("no folder unwritable to root here")
    else:
        folder = "/proc/sys"  # root writes anywhere permissions allow; procfs refuses it files
    try:
        with pytest.raises(ValueError, match=(
                rf"spool_dir '{folder}/spool' cannot hold the tracking spool: no file can be "
                rf"created in its nearest existing folder '{folder}' \(")):
            MlflowTracker(spool_dir=f"{folder}/spool")
    finally:
        if os.geteuid() != 0:
            os.chmod(folder, 0o755)


def test_a_spool_dir_that_can_be_made_is_taken_and_nothing_is_left_behind(tmp_path):
    (tmp_path / "here").mkdir()
    for spool_dir in (tmp_path / "here", tmp_path / "new" / "deeper"):
        tracker = MlflowTracker(tracking_uri=f"http://127.0.0.1:{free_port()}",
                                spool_dir=spool_dir)
        assert tracker.spool_dir == spool_dir
    # No probe file, and the spool folder is made by the first record it keeps.
    assert listing(tmp_path) == ["here"]


def test_a_full_disk_under_the_spool_dir_is_no_error(tmp_path, monkeypatch):
    import errno

    from metanas.tracking import tracker as tracker_module
    from metanas.tracking.tracker import spool_dir_problem

    # A disk full now may have room later: the tracker keeps records in memory meanwhile.
    monkeypatch.setattr(tracker_module, "creation_error",
                        lambda folder: OSError(errno.ENOSPC, "No space left on device"))
    assert spool_dir_problem(tmp_path / "spool") is None
    MlflowTracker(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", spool_dir=tmp_path / "spool")


# ------------------------------------------------------- 2. lines that are no record
def test_record_problem_names_what_is_wrong():
    assert rec.record_problem(a_record(1)) is None
    assert rec.record_problem([1, 2, 3]) == "a JSON list, not an object"
    assert rec.record_problem({"no_id": 1}) == "its 'id' is None, not a non-empty string"
    assert rec.record_problem({"id": "abc", "kind": "nonsense"}) == (
        "its 'key' is None, not a non-empty string")
    assert rec.record_problem({**a_record(1), "type": "nonsense"}) == (
        "its 'type' is 'nonsense', not one of ['search_begin', 'search_progress', "
        "'search_end', 'trial']")
    assert rec.record_problem({**a_record(1), "metrics": [["m", "high", 1, 0]]}) == (
        "its metric row ['m', 'high', 1, 0] is not [name, value, timestamp_ms, step]")
    assert rec.record_problem({**a_record(1), "target": [1]}) == (
        "its 'target' is [1], not a string")
    assert rec.record_problem({**a_record(1), "status": "NOPE"}) == (
        "its 'status' is 'NOPE', not one of ['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', "
        "'KILLED']")
    assert rec.record_problem({**a_record(1), "artifacts": {"a.txt": {"txt": "x"}}}) == (
        "its artifact 'a.txt' holds no 'text' or 'b64' string")
    assert rec.record_problem({**a_record(1), "parent": "p"}) == (
        "its 'parent' is 'p', not an object with a 'key' or 'project'")


def test_sync_keeps_lines_that_are_no_record_aside_and_says_so(tmp_path, capsys, caplog):
    caplog.set_level(logging.WARNING, logger="metanas")
    directory = tmp_path / "runs" / SPOOL_DIRNAME / "p"
    spool = Spool(directory)
    spool.append(a_record(1))
    with open(spool.path, "a", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in NOT_RECORDS))
    spool.append(a_record(2))
    store = f"sqlite:///{tmp_path}/mlflow.db"
    argv = ["tracking", "sync", str(tmp_path / "runs"), "--tracking-uri", store]
    assert cli.main(argv) == 1
    out, err = capsys.readouterr()
    # Was: "sent 0 record(s); 1 still waiting", "MLflow is still unreachable".
    assert "sent 2 record(s); 0 still waiting; 2 rejected; 1 unreadable line(s) kept" in out
    assert "still unreachable" not in err
    assert "refused some records for good (or they are no tracking record)" in err
    assert ("a spooled line is not a tracking record metanas can apply: its 'key' is None, "
            f"not a non-empty string; kept in {directory / REJECTED_NAME}") in caplog.text
    rejected = [json.loads(line)
                for line in (directory / REJECTED_NAME).read_text().splitlines()]
    assert [r["record"] for r in rejected] == [json.loads(NOT_RECORDS[0]),
                                               json.loads(NOT_RECORDS[2])]
    assert [r["reason"] for r in rejected] == [
        "not a tracking record metanas can apply: its 'key' is None, not a non-empty string",
        "not a tracking record metanas can apply: its 'id' is None, not a non-empty string"]
    side = directory / f"tuner0.pending.jsonl{UNREADABLE_SUFFIX}"
    assert side.read_text() == "[1, 2, 3]\n"
    assert not spool.has_pending()
    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs([client.get_experiment_by_name("e").experiment_id])
    assert sorted(run.info.run_name for run in runs) == ["s1", "s2"]
    # Said again at the next sync, not sent nor lost.
    assert cli.main(argv) == 1
    assert "sent 0 record(s); 0 still waiting; 2 rejected; 1 unreadable line(s) kept" in (
        capsys.readouterr().out)


def test_a_search_replaying_lines_that_are_no_record_keeps_them_aside(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="metanas")
    directory = tmp_path / "runs" / SPOOL_DIRNAME / "p"
    directory.mkdir(parents=True)
    odd_target = {**a_record(9), "target": [1]}  # was: a TypeError in sync, waiting for ever
    lines = NOT_RECORDS + [json.dumps(odd_target)]
    (directory / "tuner0.pending.jsonl").write_text("".join(line + "\n" for line in lines))
    store = f"sqlite:///{tmp_path}/mlflow.db"
    tuner = RandomSearch(TinyModel(), objective="loss", max_trials=1, seed=3,
                         directory=str(tmp_path / "runs"), project_name="p",
                         hyperparameters=no_faults(), tracking=MlflowTracker(tracking_uri=store))
    tuner.search(X, Y, epochs=1, verbose=0)
    # Was: "could not replay the spooled records ('list' object has no attribute
    # 'get')", and every record of the search spooled after them.
    assert "could not replay" not in caplog.text
    check_search_logged(store, "p", tuner, epochs=1)
    assert tuner.tracker.rejected == 3 and tuner.tracker.unreadable == 1
    rejected = [json.loads(line)["record"]
                for line in (directory / REJECTED_NAME).read_text().splitlines()]
    assert rejected == [json.loads(NOT_RECORDS[0]), json.loads(NOT_RECORDS[2]), odd_target]
    side = directory / f"tuner0.pending.jsonl{UNREADABLE_SUFFIX}"
    assert side.read_text() == "[1, 2, 3]\n"
    assert not Spool(directory).has_pending()


# --------------------------------------------- 4. MLFLOW_TRACKING_URI of an unknown scheme
def test_an_mlflow_tracking_uri_of_an_unknown_scheme_is_a_value_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "foo://bob:hunter2@bar")
    pattern = (r"MLFLOW_TRACKING_URI='foo://bob:\*\*\*@bar' is not a tracking URI MLflow can "
               r"use: MLflow stores runs only at URIs of the schemes \[.*'sqlite'.*\]; set it")
    with pytest.raises(ValueError, match=pattern):
        MlflowTracker()
    # Was: the search ran, every record spooled as if MLflow were merely down.
    with pytest.raises(ValueError, match=pattern):
        RandomSearch(TinyModel(), objective="loss", max_trials=1, seed=3,
                     directory=str(tmp_path / "runs"), project_name="p")
    assert not (tmp_path / "runs").exists()
    RandomSearch(TinyModel(), objective="loss", max_trials=1, seed=3,  # what it says to do
                 directory=str(tmp_path / "runs"), project_name="p", tracking=False)
    MlflowTracker(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")  # an explicit URI wins


@pytest.mark.filterwarnings("ignore::metanas.tuners.ShortSearchWarning")  # 1 trial
def test_the_demo_with_an_mlflow_tracking_uri_of_an_unknown_scheme_exits_2(tmp_path,
                                                                           monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "foo://bar")
    argv = ["demo", "--max-trials", "1", "--epochs", "1", "--directory", str(tmp_path / "d")]
    assert cli.main(argv) == 2  # was: 0, every record spooled
    err = capsys.readouterr().err.strip()
    assert err.startswith("metanas demo: error: MLFLOW_TRACKING_URI='foo://bar' is not a "
                          "tracking URI MLflow can use") and "\n" not in err


# ------------------------------------------------------- 3. a meta-study's plots
@pytest.fixture(scope="module")
def study():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="s", sampler=optuna.samplers.RandomSampler(seed=0))
    def meta_trial(trial):  # as `meta_train` stamps its meta-trials
        trial.set_user_attr("source", "meta-train")
        return trial.suggest_float("x", 0.0, 1.0)

    study.optimize(meta_trial, n_trials=2)
    return study


def logged(study, paths, **kwargs):
    """``log_meta_study``'s run id and the messages it warned."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_id = log_meta_study(study, paths, storage="sqlite:///meta.db", **kwargs)
    # (Not a library's deprecation notice: SQLAlchemy's shows in the first test to open a store.)
    return run_id, [str(w.message) for w in caught if not issubclass(w.category, DeprecationWarning)]


def test_meta_study_plots_are_not_waited_on_a_server_that_is_down(study, tmp_path,
                                                                   monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)  # as `metanas meta-train` finds it
    started = time.monotonic()
    run_id, messages = logged(study, [str(tmp_path / "history.png")])
    assert time.monotonic() - started < 15  # was: ~257 s of MLflow's HTTP retries
    assert run_id is None
    assert messages == [
        f"the meta-study plots were not logged to MLflow (the tracking store {url} is not "
        f"usable: {url}/health did not answer ([Errno 111] Connection refused)); they are "
        f"on disk: {[str(tmp_path / 'history.png')]}"]


def test_meta_study_plots_warning_names_every_scheme(study):
    run_id, messages = logged(study, [], tracking_uri="garbage://")
    assert run_id is None and len(messages) == 1
    # Was: cut at 200 characters, mid-list ("'http', 'ht); they are on disk").
    assert messages[0].startswith("the meta-study plots were not logged to MLflow (MLflow "
                                  "cannot use the tracking URI 'garbage://': MLflow stores "
                                  "runs only at URIs of the schemes [")
    assert re.search(r"'sqlite'[^\]]*\]\); they are on disk: \[\]$", messages[0])


def test_meta_study_plots_are_logged_to_a_store_that_works(study, tmp_path):
    png = tmp_path / "history.png"
    png.write_bytes(b"\x89PNG\r\n")
    store = f"sqlite:///{tmp_path}/mlflow.db"
    run_id, messages = logged(study, [str(png)], tracking_uri=store)
    assert messages == [] and run_id is not None
    client = MlflowClient(tracking_uri=store)
    run = client.get_run(run_id)
    assert run.info.run_name == "meta-study-s" and run.info.status == "FINISHED"
    assert run.data.params["meta_trials"] == "2"
    assert [a.path for a in client.list_artifacts(run_id, "meta-study")] == [
        "meta-study/history.png"]


def test_a_long_error_is_cut_at_a_space():
    from metanas.meta.plots import _brief

    assert _brief("first line\nsecond") == "first line"
    assert _brief("word " * 30, limit=22) == "word word word word ..."
    assert _brief("x" * 30, limit=10) == "x" * 10 + " ..."


def test_a_refused_record_that_rejected_jsonl_cannot_keep_waits_in_the_spool(tmp_path):
    from metanas.tracking import sync

    directory = tmp_path / "runs" / SPOOL_DIRNAME / "p"
    refused = {**a_record(1), "experiment": ""}  # MLflow refuses the name, for good
    Spool(directory).append(refused)
    (directory / REJECTED_NAME).mkdir()  # where the refused record would be kept
    store = f"sqlite:///{tmp_path}/mlflow.db"
    result = sync(tmp_path / "runs", tracking_uri=store)
    # Was: counted as rejected, and dropped from the spool with nowhere to go.
    assert result == {"sent": 0, "waiting": 1, "rejected": 0, "unreadable": 0}
    assert Spool.read(directory / "tuner0.pending.jsonl") == [refused]
    (directory / REJECTED_NAME).rmdir()
    result = sync(tmp_path / "runs", tracking_uri=store)
    assert result == {"sent": 0, "waiting": 0, "rejected": 1, "unreadable": 0}
    kept = json.loads((directory / REJECTED_NAME).read_text())
    assert kept["record"] == refused and "experiment" in kept["reason"].lower()


def test_record_problem_catches_what_would_fail_every_replay():
    # Each passed the check, then failed in apply_record as if MLflow were down,
    # holding back every later record of its file (or wrote outside the run).
    record = a_record(1)
    for artifacts, reason in [
        ({"/tmp/evil.txt": {"text": "x"}}, "its artifact name '/tmp/evil.txt' is not a relative"),
        ({"../evil.txt": {"text": "x"}}, "its artifact name '../evil.txt' is not a relative"),
        ({"": {"text": "x"}}, "its artifact name '' is not a relative"),
        ({"a": {"text": "x"}, "a/b": {"text": "y"}}, "its artifact 'a' is also the folder of"),
        ({"a.bin": {"b64": "abc"}}, "it holds a value that cannot be read (Error: "),
        ({"a.txt": {"b64": None, "text": "x"}}, "its artifact 'a.txt' holds no 'text' or 'b64'"),
    ]:
        assert rec.record_problem({**record, "artifacts": artifacts}).startswith(reason)
    assert rec.record_problem({**record, "metrics": [["m", 0.5, 10 ** 400, 0]]}).endswith(
        "... is not [name, value, timestamp_ms, step]")  # (was an OverflowError)
    parent = {"key": "s/search", "name": "s"}
    assert rec.record_problem({**record, "parent": {**parent, "tags": [1]}}) == (
        "its parent's 'tags' is [1], not an object")
    assert rec.record_problem({**record, "parent": {**parent, "before_ms": "x"}}) == (
        "its parent's 'before_ms' is 'x', not a time in milliseconds")
    ok = {"model/summary.txt": {"text": "x"}, "model/w.bin": {"b64": "AAEC"}}
    assert rec.record_problem({**record, "artifacts": ok, "parent": parent}) is None


def test_sync_sends_the_spools_it_can_beside_one_it_cannot_write(tmp_path, monkeypatch, capsys):
    # Was: sync built each spool's tracker with spool_dir=, which now refuses a
    # folder it cannot write in: the first such spool stopped the whole sync.
    from metanas.tracking import tracker as tracker_module

    for n in (1, 2):
        Spool(tmp_path / "runs" / SPOOL_DIRNAME / f"p{n}").append(a_record(n))
    monkeypatch.setattr(tracker_module, "spool_dir_problem", lambda path: "read-only")
    store = f"sqlite:///{tmp_path}/mlflow.db"
    assert cli.main(["tracking", "sync", str(tmp_path / "runs"), "--tracking-uri", store]) == 0
    assert "sent 2 record(s); 0 still waiting" in capsys.readouterr().out


def test_a_server_that_asks_for_credentials_on_health_is_up(tmp_path):
    # A proxy in front of MLflow (basic auth, OAuth) answers 401 there: it was taken
    # for a server that is down, and records waited in the spool for ever.
    import http.server
    import threading

    from metanas.tracking.tracker import server_problem

    class Asks(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(401 if self.path == "/health" else 500)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Asks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        assert server_problem(url) is None
        assert server_problem("HTTP" + url[4:]) is None  # (MLflow takes the scheme so too)
        Asks.do_GET = lambda self: (self.send_response(503), self.end_headers())
        assert server_problem(url) == f"{url}/health answered HTTP 503"
    finally:
        server.shutdown()
        server.server_close()


def test_a_rejected_record_begins_a_line_of_its_own_and_is_synced(tmp_path):
    spool = Spool(tmp_path)
    spool.reject(a_record(1), "bad")
    path = tmp_path / REJECTED_NAME
    path.write_bytes(path.read_bytes()[:-7])  # torn by a crash
    spool.reject(a_record(2), "worse")
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1]) == {"reason": "worse", "record": a_record(2)}
