"""A worker's proxy to the chief when no chief answers (in-process, no server).

The chief's port is one nobody listens on; what the worker does then depends
on the ended-search marker a chief leaves in the shared project directory.
"""

import json
import socket
import time
from concurrent import futures

import grpc
import keras_tuner
import pytest
from keras_tuner.src.distribute import oracle_client

from metanas.tuners import RandomSearchOracle, distributed


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def port():
    return free_port()  # nobody listens on it, unless a test serves there


def small_oracle() -> RandomSearchOracle:
    hps = keras_tuner.HyperParameters()
    hps.Choice("units", [8, 16])
    return RandomSearchOracle(objective=keras_tuner.Objective("score", "max"),
                              max_trials=3, hyperparameters=hps, seed=0)


@pytest.fixture
def client(tmp_path, monkeypatch, port):
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner7")
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
    oracle = small_oracle()

    def make(**kwargs):
        return distributed.ResilientOracleClient(
            oracle_client.OracleClient(oracle), project_dir=str(tmp_path), **kwargs)

    return make


def mark(tmp_path, ended_at, reason="done"):
    (tmp_path / distributed.CHIEF_ENDED_FILE).write_text(
        json.dumps({"ended_at": ended_at, "reason": reason}))


def test_a_search_that_ended_after_the_worker_started_stops_it_at_once(client, tmp_path,
                                                                       capfd):
    mark(tmp_path, time.time(), reason="done")  # an earlier search's end
    worker = client()
    mark(tmp_path, time.time() - 3600, reason="failed: too many failed trials")  # this one's
    began = time.monotonic()
    trial = worker.create_trial("tuner7")
    assert trial.status == "STOPPED" and time.monotonic() - began < 10
    assert "the chief ended this search" in capfd.readouterr().err
    assert worker.create_trial("tuner7").status == "STOPPED"
    assert "the chief ended" not in capfd.readouterr().err  # said once
    # Its own copy of the space, and no results from a gone chief.
    assert worker.get_space().get("units") == 8
    with pytest.raises(RuntimeError, match="the chief has ended the search and is gone"):
        worker.get_best_trials(1)
    with pytest.raises(RuntimeError, match=r"update_trial: the chief ended the search \(failed"):
        worker.update_trial("00", {"score": 1.0})


def test_an_older_marker_stops_the_worker_only_after_the_grace(client, tmp_path, monkeypatch):
    monkeypatch.setattr(distributed, "ENDED_GRACE_SECONDS", 1.5)
    mark(tmp_path, time.time() + 3600)  # an earlier search's, or this one's before we came:
    # which one is told by the contents, not the clock (the chief's may differ).
    worker = client()
    began = time.monotonic()
    assert worker.create_trial("tuner7").status == "STOPPED"
    assert 1.5 <= time.monotonic() - began < 15  # a new chief had that long to delete it


def test_no_chief_and_no_marker_is_a_clear_error_after_the_wait(client, monkeypatch, capfd):
    monkeypatch.setattr(distributed, "FIRST_CONTACT_SECONDS", 1.2)
    monkeypatch.setattr(distributed, "ANNOUNCE_SECONDS", 0.4)
    worker = client()
    with pytest.raises(RuntimeError, match=r"no chief at 127\.0\.0\.1:\d+ for \d+ s"):
        worker.create_trial("tuner7")
    assert "Worker tuner7 is waiting for the chief at 127.0.0.1:" in capfd.readouterr().err


def test_a_chief_starting_deletes_the_marker_and_ending_writes_it(tmp_path):
    distributed.mark_chief_ended(str(tmp_path), "done")
    ended = json.loads((tmp_path / distributed.CHIEF_ENDED_FILE).read_text())
    assert ended["reason"] == "done" and abs(ended["ended_at"] - time.time()) < 60
    distributed.mark_chief_started(str(tmp_path))
    assert not (tmp_path / distributed.CHIEF_ENDED_FILE).exists()
    distributed.mark_chief_started(str(tmp_path))  # none: nothing to do


def test_a_chief_that_answered_then_refuses_is_waited_for_with_backoff_then_given_up(
        client, port):
    # An address that takes connections but answers UNAVAILABLE (a proxy in
    # front of a chief that is down): it was retried in a hot loop, for ever.
    calls = []

    class Unavailable(grpc.GenericRpcHandler):
        def service(self, details):
            def handler(request, context):
                calls.append(time.monotonic())
                context.abort(grpc.StatusCode.UNAVAILABLE, "upstream connect error")
            return grpc.unary_unary_rpc_method_handler(handler)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[Unavailable()])
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        worker = client(patience=2.0)
        worker._answered = True  # it had answered before
        with pytest.raises(RuntimeError, match=r"no chief at 127\.0\.0\.1:\d+ for [2-5] s"):
            worker.create_trial("tuner7")
    finally:
        server.stop(0)
    assert 2 <= len(calls) <= 5  # backed off: 0.5 s, 1 s, 2 s


def test_a_chief_on_a_port_another_chief_listens_on_is_refused(tmp_path, monkeypatch):
    # gRPC set SO_REUSEPORT: a second chief bound the port too, without error, and
    # the kernel shared the workers out between the two searches.
    other = grpc.server(futures.ThreadPoolExecutor(max_workers=1))  # keras-tuner's binding
    port = other.add_insecure_port("127.0.0.1:0")
    other.start()
    try:
        monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
        monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
        oracle = small_oracle()
        oracle._set_project_dir(str(tmp_path), "search")
        with pytest.raises(RuntimeError, match=f"could not listen on 127.0.0.1:{port} "):
            distributed.serve_chief(oracle, poll_seconds=0.05, max_seconds=1)
    finally:
        other.stop(0)

