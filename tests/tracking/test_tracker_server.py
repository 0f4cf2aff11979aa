"""MLflow tracking against a real `mlflow server` on 127.0.0.1: outages, replay, sync."""

import logging
import shutil

import pytest
from mlflow.tracking import MlflowClient

from metanas import cli
from metanas.tracking import MlflowTracker
from metanas.tracking.server import free_port, start_server, stop_server
from metanas.tracking.tracker import SPOOL_DIRNAME
from metanas.tuners import RandomSearch
from tests.tracking.helpers import X, Y, TinyModel, check_search_logged

pytestmark = pytest.mark.slow


class Server:
    """A real `mlflow server` that a test can stop and start again on the same port."""

    def __init__(self, tmp_path):
        self.store = f"sqlite:///{tmp_path}/server.db"
        self.artifacts = str(tmp_path / "server-artifacts")
        self.port = free_port()
        self.log = tmp_path / "server.log"
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self):
        self.process, url = start_server(
            self.store, port=self.port, artifacts_destination=self.artifacts, log_path=self.log
        )
        assert url == self.url

    def stop(self):
        stop_server(self.process)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    # One server for the module (each start costs seconds): every test logs to
    # an experiment of its own, and the tests that stop it start it again.
    server = Server(tmp_path_factory.mktemp("server"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def server(shared_server):
    if shared_server.process.poll() is not None:  # a test failed while it was down
        shared_server.start()
    return shared_server


class OutageModel(TinyModel):
    """Calls ``events[n]`` before the n-th trial's training (0-based): stops or starts the server."""

    def __init__(self, events):
        super().__init__()
        self.events = events
        self.fits = 0

    def fit(self, hp, model, *args, **kwargs):
        event = self.events.get(self.fits)
        self.fits += 1
        if event:
            event()
        return super().fit(hp, model, *args, **kwargs)


def no_faults():
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    hp.Fixed("fault", "none")
    return hp


def spooled(tmp_path):
    return list((tmp_path / "runs" / SPOOL_DIRNAME).rglob("*.pending.jsonl"))


def test_server_stopped_mid_search_then_restarted_logs_every_trial_exactly_once(server, tmp_path):
    model = OutageModel({2: server.stop, 5: server.start})
    tuner = RandomSearch(
        model, objective="loss", max_trials=7, seed=5, directory=str(tmp_path / "runs"),
        project_name="outage", hyperparameters=no_faults(),
        tracking=MlflowTracker(tracking_uri=server.url),
    )
    tuner.search(X, Y, epochs=2, verbose=0)
    assert model.fits == 7 and len(tuner.oracle.trials) == 7
    # Trials 1-4 ended while the server was down; trial 5's end replayed them.
    check_search_logged(server.url, "outage", tuner, epochs=2)
    assert not spooled(tmp_path), "every spooled record was replayed"
    client = MlflowClient(tracking_uri=server.url)
    parent = client.search_runs(
        [client.get_experiment_by_name("outage").experiment_id],
        filter_string="tags.`metanas.role` = 'search'",
    )[0]
    best = client.get_metric_history(parent.info.run_id, "best_so_far")
    assert [m.step for m in best] == list(range(7)), "best-so-far once per trial"
    assert parent.info.status == "FINISHED"


def test_sync_replays_what_waited_and_a_second_replay_adds_nothing(server, tmp_path, caplog):
    model = OutageModel({1: server.stop})
    tracker = MlflowTracker(tracking_uri=server.url)
    tuner = RandomSearch(
        model, objective="loss", max_trials=4, seed=6, directory=str(tmp_path / "runs"),
        project_name="later", hyperparameters=no_faults(), tracking=tracker,
    )
    with caplog.at_level(logging.WARNING):
        tuner.search(X, Y, epochs=2, verbose=0)
    assert len(tuner.oracle.trials) == 4
    assert "spooling to" in caplog.text
    files = spooled(tmp_path)
    assert len(files) == 1
    kept = tmp_path / "copy.jsonl"
    shutil.copy(files[0], kept)

    server.start()
    assert cli.main(["tracking", "sync", str(tmp_path / "runs"), "--tracking-uri", server.url]) == 0
    assert not spooled(tmp_path)
    check_search_logged(server.url, "later", tuner, epochs=2)

    # The same records replayed again (a crash right after sending them, before
    # the spool was emptied): idempotent, nothing logged twice.
    shutil.copy(kept, files[0])
    assert cli.main(["tracking", "sync", str(tmp_path / "runs"), "--tracking-uri", server.url]) == 0
    check_search_logged(server.url, "later", tuner, epochs=2)
    client = MlflowClient(tracking_uri=server.url)
    exp_id = client.get_experiment_by_name("later").experiment_id
    for run in client.search_runs([exp_id]):
        for key in run.data.metrics:
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert len(steps) == len(set(steps)), f"{key} of {run.info.run_name} logged twice"


def test_unreachable_server_never_stops_the_search_nor_leaks_credentials(tmp_path, caplog,
                                                                         capsys):
    url = f"http://bob:hunter2@127.0.0.1:{free_port()}"  # nothing listens there
    tuner = RandomSearch(
        TinyModel(), objective="loss", max_trials=2, seed=7, directory=str(tmp_path / "runs"),
        project_name="nowhere", hyperparameters=no_faults(),
        tracking=MlflowTracker(tracking_uri=url),
    )
    with caplog.at_level(logging.WARNING):
        tuner.search(X, Y, epochs=1, verbose=0)
    assert len(tuner.oracle.trials) == 2
    files = spooled(tmp_path)
    assert files and "hunter2" not in files[0].read_text()
    assert "bob:***@" in caplog.text and "hunter2" not in caplog.text
    waiting = tuner.tracker.flush()
    assert waiting > 0  # still waiting, nothing lost
    assert cli.main(["tracking", "sync", str(tmp_path / "runs"), "--tracking-uri", url]) == 1
    # Without --tracking-uri, sync refuses to send them to the default store instead.
    capsys.readouterr()
    assert cli.main(["tracking", "sync", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"were meant for ['http://bob:***@127.0.0.1:{url.rsplit(':', 1)[1]}']" in err
    assert "hunter2" not in err and "\n" not in err
    assert tuner.tracker.flush() == waiting


def test_chief_and_three_workers_log_their_trials_under_one_parent(server, tmp_path):
    from tests.tuners.test_distributed import check_complete, run_cluster

    run_cluster("evolution", tmp_path, 8, TRIAL_SECONDS=0.2, MLFLOW_TRACKING_URI=server.url)
    trials, _ = check_complete(tmp_path, 8)
    client = MlflowClient(tracking_uri=server.url)
    exp_id = client.get_experiment_by_name("search").experiment_id
    runs = client.search_runs([exp_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("metanas.role") == "search"]
    children = [r for r in runs if r.data.tags.get("metanas.role") == "trial"]
    assert len(parents) == 1
    parent = parents[0]
    assert sorted(c.data.tags["metanas.trial_id"] for c in children) == sorted(trials)
    for child in children:
        trial = trials[child.data.tags["metanas.trial_id"]]
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED"
        assert child.data.metrics["objective"] == pytest.approx(trial["score"])
        assert child.data.params == {
            k: str(v) for k, v in trial["hyperparameters"]["values"].items()
        }
    # The chief, which holds the oracle, closed the parent with the whole curve.
    assert parent.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(parent.info.run_id, "best_so_far")] == list(
        range(8)
    )
    assert "trials.csv" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert not list(tmp_path.rglob("*.pending.jsonl"))


# SIGTERM (a kill); SIGHUP and SIGQUIT go to the same handler (metanas.cli).
@pytest.mark.parametrize("stop", ["SIGTERM"])
def test_metanas_ui_serves_the_store_on_localhost(tmp_path, stop):
    import os
    import pathlib
    import signal
    import subprocess
    import sys
    import time

    import requests

    from metanas.tracking.server import wait_until_up

    store = f"sqlite:///{tmp_path}/mlflow.db"
    MlflowClient(tracking_uri=store).create_experiment("browse-me")
    port = free_port()
    metanas_bin = pathlib.Path(sys.executable).with_name("metanas")
    ui = subprocess.Popen(
        [str(metanas_bin), "ui", "--backend-store-uri", store, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}", process=ui)
        found = requests.get(
            f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name",
            params={"experiment_name": "browse-me"}, timeout=10,
        )
        assert found.ok and found.json()["experiment"]["name"] == "browse-me"
        listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
        addresses = {line.split()[3] for line in listening.splitlines() if f":{port}" in line}
        assert addresses == {f"127.0.0.1:{port}"}, addresses
        # The signal to `metanas ui` alone (not its group) stops the server it started.
        os.kill(ui.pid, getattr(signal, stop))
        output, _ = ui.communicate(timeout=60)
        for _ in range(100):  # the server's workers may take a moment to close the socket
            listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
            if not [line for line in listening.splitlines() if f"127.0.0.1:{port} " in line]:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"port {port} still listens after `metanas ui` was stopped")
    finally:
        try:  # whatever is left of the group the test started
            os.killpg(ui.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if ui.poll() is None:
            ui.communicate(timeout=30)
    # Its address once it answers, not before (it takes seconds to start).
    assert output.startswith(f"Starting the MLflow UI for {store} ...\n")
    assert f"MLflow UI for {store} on http://127.0.0.1:{port} (Ctrl-C stops it)" in output


def test_metanas_ui_refuses_a_port_in_use(tmp_path, capsys):
    import socket

    from metanas import cli

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["ui", "--backend-store-uri", f"sqlite:///{tmp_path}/mlflow.db", "--port", str(port)]
        assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"metanas ui: error: cannot listen on 127.0.0.1:{port} (Address already"
                          " in use); choose another --port or --host") and "\n" not in err
    assert not (tmp_path / "mlflow.db").exists()  # no server was started
    # A store that does not exist (a typo) is refused, not created and served empty.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = ["ui", "--backend-store-uri", f"sqlite:///{tmp_path}/mlfow.db", "--port", str(port)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert f"--backend-store-uri: no tracking store at '{tmp_path}/mlfow.db'" in err
    assert "\n" not in err and not (tmp_path / "mlfow.db").exists()


def test_the_port_probe_binds_as_the_server_does():
    import socket

    from metanas.cli import _check_listen
    from metanas.usage import UsageError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UsageError, match=f"cannot listen on localhost:{port}"):
            _check_listen("localhost", port)  # every address of the name
        with pytest.raises(UsageError, match=f"cannot listen on 0.0.0.0:{port}"):
            _check_listen("0.0.0.0", port)
        if socket.has_ipv6 and _binds("::1"):  # a machine with IPv6 loopback
            _check_listen("::1", port)  # IPv6-only, as the server binds it: free
    for bad in ("nope.invalid", "a..b"):
        with pytest.raises(UsageError, match=f"cannot listen on {bad}:80"):
            _check_listen(bad, 80)


def _binds(host):
    import socket

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind((host, 0))
        return True
    except OSError:
        return False


def test_a_second_ctrl_c_while_the_server_stops_kills_its_group_at_once():
    # A server that ignores SIGTERM would hold `stop_server` for its whole timeout;
    # a KeyboardInterrupt during that wait (the user's second Ctrl-C) sends SIGKILL
    # to the group at once, then reaches the caller.
    import signal
    import subprocess
    import sys
    import time

    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(120)")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                               start_new_session=True)

    def second_ctrl_c(*_):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, second_ctrl_c)
    try:
        assert process.stdout.readline().strip() == "ready"
        started = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(KeyboardInterrupt):
            stop_server(process, timeout=60)
        assert process.poll() == -signal.SIGKILL
        assert time.monotonic() - started < 30
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()


def test_a_tracking_uri_mlflow_cannot_use_is_refused_and_sync_keeps_every_record(tmp_path,
                                                                                 capsys):
    # An unknown scheme is refused before the search; `sync` to one keeps the records.
    from metanas.tracking.spool import REJECTED_NAME

    with pytest.raises(ValueError, match=r"MLflow cannot use the tracking URI 'bogus://x': MLflow "
                                         r"stores runs only at URIs of the schemes \[.*'sqlite'"):
        MlflowTracker(tracking_uri="bogus://x")
    store = f"sqlite:///{tmp_path}/mlflow.db"
    server_down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    tuner = RandomSearch(
        TinyModel(), objective="loss", max_trials=2, seed=7, directory=str(tmp_path / "runs"),
        project_name="typo", hyperparameters=no_faults(),
        tracking=MlflowTracker(tracking_uri=server_down),
    )
    tuner.search(X, Y, epochs=1, verbose=0)
    waiting = tuner.tracker.flush()
    assert waiting > 0
    capsys.readouterr()
    argv = ["tracking", "sync", str(tmp_path / "runs"), "--tracking-uri", "bogus://x"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("metanas tracking sync: error: MLflow cannot use the "
                          "tracking URI 'bogus://x'") and "\n" not in err
    assert tuner.tracker.flush() == waiting and not list(tmp_path.rglob(REJECTED_NAME))
    # The right URI then sends them all.
    assert cli.main(["tracking", "sync", str(tmp_path / "runs"), "--tracking-uri", store]) == 0
    check_search_logged(store, "typo", tuner, epochs=1)
