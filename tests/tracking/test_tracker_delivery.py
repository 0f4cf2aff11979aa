"""Where tracking records go: one tracker for several searches, replays, a server that hangs."""

import http.server
import json
import threading
import time

import keras_tuner
import pytest

from metanas import cli
from metanas.tracking import MlflowTracker
from metanas.tracking.spool import Spool
from metanas.tracking.tracker import SPOOL_DIRNAME, store_target
from metanas.tuners import RandomSearch
from tests.tracking.helpers import X, Y, TinyModel, check_search_logged, runs_of


def no_faults():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("fault", "none")
    return hp


def search(tmp_path, project, tracker, trials=2, overwrite=False):
    tuner = RandomSearch(TinyModel(), objective="loss", max_trials=trials, seed=3,
                         directory=str(tmp_path / "runs"), project_name=project,
                         hyperparameters=no_faults(), tracking=tracker, overwrite=overwrite)
    tuner.search(X, Y, epochs=1, verbose=0)
    return tuner


def test_one_tracker_given_to_two_searches_logs_two_searches(tmp_path):
    store = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = MlflowTracker(tracking_uri=store)
    first = search(tmp_path, "digits_a", tracker)
    second = search(tmp_path, "digits_b", tracker)
    check_search_logged(store, "digits_a", first, epochs=1)
    check_search_logged(store, "digits_b", second, epochs=1)  # was: no such experiment
    ids = {json.loads((tmp_path / "runs" / p / "metanas_tracking.json").read_text())["search_id"]
           for p in ("digits_a", "digits_b")}
    assert len(ids) == 2
    assert not list((tmp_path / "runs").rglob("rejected.jsonl"))
    # The same search again (nothing new to run) keeps its parent run.
    search(tmp_path, "digits_b", tracker)
    assert len(runs_of(store, "digits_b")[0]) == 1
    # overwrite=True starts a new search, with the same tracker too.
    search(tmp_path, "digits_b", tracker, overwrite=True)
    assert len(runs_of(store, "digits_b")[0]) == 2


def test_records_meant_for_another_store_wait_for_it(tmp_path, capsys, caplog):
    store_a, store_b = (f"sqlite:///{tmp_path}/{name}.db" for name in ("a", "b"))
    # An earlier search of the project, tracked to store A, left a record waiting
    # (A was unreachable then).
    spool = tmp_path / "runs" / SPOOL_DIRNAME / "shared"
    records = [{"id": "w1", "type": "search_begin", "key": "old/search", "name": "old",
                "start_ms": 1, "reopen": True, "params": {"p": 1}, "tags": {"metanas.role": "search"},
                "experiment": "shared", "target": store_target(store_a)}]
    spool.mkdir(parents=True, exist_ok=True)
    Spool.rewrite(spool / "tuner0.pending.jsonl", records)
    # The next search of the project tracks to store B: A's record stays waiting.
    second = search(tmp_path, "shared", MlflowTracker(tracking_uri=store_b), trials=1)
    check_search_logged(store_b, "shared", second, epochs=1)
    assert [r["id"] for r in Spool.read(spool / "tuner0.pending.jsonl")] == ["w1"]
    # Another store's record: this search has nothing waiting, and says nothing.
    assert "wait in" not in caplog.text
    # `sync` of the project directory (its spool sits beside it) sends it where it is told.
    capsys.readouterr()
    assert cli.main(["tracking", "sync", str(tmp_path / "runs" / "shared"),
                     "--tracking-uri", store_a]) == 0
    assert "sent 1 record(s); 0 still waiting; 0 rejected" in capsys.readouterr().out
    assert [p.info.run_name for p in runs_of(store_a, "shared")[0]] == ["old"]
    assert not Spool(spool).has_pending()


def test_sync_counts_a_record_mlflow_refuses_as_rejected_not_sent(tmp_path, capsys):
    spool = tmp_path / "runs" / SPOOL_DIRNAME / "p"
    spool.mkdir(parents=True)
    good = {"id": "g", "type": "search_begin", "key": "s/search", "name": "s", "start_ms": 1,
            "reopen": True, "params": {}, "tags": {}, "experiment": "e"}
    bad = dict(good, id="b", key="t/search", experiment="")  # MLflow refuses the name
    Spool.rewrite(spool / "tuner0.pending.jsonl", [good, bad])
    store = f"sqlite:///{tmp_path}/store.db"
    assert cli.main(["tracking", "sync", str(tmp_path / "runs"), "--tracking-uri", store]) == 1
    out, err = capsys.readouterr()
    assert "sent 1 record(s); 0 still waiting; 1 rejected" in out
    assert "refused some records for good" in err
    assert len((spool / "rejected.jsonl").read_text().splitlines()) == 1


class HangingServer(http.server.BaseHTTPRequestHandler):
    """/health answers; every API call hangs (an overloaded server, a locked database)."""

    calls = []

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path.startswith("/health"):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"OK")
            return
        HangingServer.calls.append(self.path)
        time.sleep(30)

    do_POST = do_GET

    def log_message(self, *args):
        pass


def test_a_server_that_hangs_costs_one_timeout_not_one_per_record(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")  # the user's setting is kept
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HangingServer)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    HangingServer.calls = []
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        tuner = search(tmp_path, "hung", MlflowTracker(tracking_uri=url), trials=4)
    finally:
        server.shutdown()
    assert len(tuner.oracle.trials) == 4
    # About 10 records: the first times out; the search's end does not try a
    # server that failed seconds before (was: a second timeout in a row). Each
    # try is a call the server sees, so the count is the time spent waiting
    # (a bound on the wall time failed under a loaded CPU, at 31 s).
    assert len(HangingServer.calls) == 1, HangingServer.calls
    waiting = sum(len(Spool.read(p)) for p in
                  (tmp_path / "runs" / SPOOL_DIRNAME / "hung").glob("*.pending.jsonl"))
    assert waiting >= 9  # nothing lost


def test_spool_reads_survive_a_file_another_process_removed(tmp_path, monkeypatch):
    spool = Spool(tmp_path / "spool")
    gone = tmp_path / "spool" / "other.pending.jsonl"
    monkeypatch.setattr(Spool, "files", lambda self: [gone])
    assert Spool.read(gone) == [] and not spool.has_pending()


def test_the_health_probe_uses_mlflows_tls_settings(monkeypatch):
    from metanas.tracking.tracker import _tls_settings

    for name in ("MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_TRACKING_SERVER_CERT_PATH",
                 "MLFLOW_TRACKING_CLIENT_CERT_PATH"):
        monkeypatch.delenv(name, raising=False)
    assert _tls_settings() == {}
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", "/etc/ca.pem")
    monkeypatch.setenv("MLFLOW_TRACKING_CLIENT_CERT_PATH", "/etc/me.pem")
    assert _tls_settings() == {"verify": "/etc/ca.pem", "cert": "/etc/me.pem"}
    monkeypatch.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
    assert _tls_settings()["verify"] is False


@pytest.mark.parametrize("value", [5, "", "  "])
def test_a_bad_spool_dir_is_a_value_error(value):
    with pytest.raises(ValueError, match="spool_dir must be a non-empty path or None, got"):
        MlflowTracker(spool_dir=value)


def test_a_search_that_ends_with_its_records_waiting_says_how_to_send_them(tmp_path, caplog):
    # Was silent: the parent run showed RUNNING in MLflow until a later search or a
    # sync sent the records, and nothing said so (a review's kill test).
    from metanas.tracking.server import free_port

    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    search(tmp_path, "away", MlflowTracker(tracking_uri=down), trials=1)
    spool = tmp_path / "runs" / SPOOL_DIRNAME / "away"
    waiting = sum(len(Spool.read(p)) for p in spool.glob("*.pending.jsonl"))
    assert waiting > 0
    assert (f"{waiting} MLflow record(s) of this store wait in {spool} (MLflow could not take "
            "them); the next search tracked to it sends them, or `metanas tracking sync` (see "
            'the README, "When MLflow is down")') in caplog.text
