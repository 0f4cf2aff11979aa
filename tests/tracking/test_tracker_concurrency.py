"""Searches side by side: two sharing a spool directory, a chief and its workers."""

import fcntl
import json
import math
import hashlib
import os
import pathlib
import shutil
import threading

import keras_tuner
import pytest
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from metanas.tracking import MlflowTracker
from metanas.tracking import records as rec
from metanas.tracking import tracker as tracker_module
from metanas.tracking.server import free_port
from metanas.tracking.spool import Spool
from metanas.tuners import RandomSearch
from tests.tracking.helpers import runs_of

SCRIPT = pathlib.Path(__file__).with_name("distributed_tracked.py")
REBUILT, TRIAL = "metanas.rebuilt", "metanas.trial_id"  # tags


class Scored(RandomSearch):
    """A search with no training: a trial's score is its hyperparameter."""

    def run_trial(self, trial, *args, **kwargs):
        return float(trial.hyperparameters.get("u"))


def build(hp):
    hp.Int("u", 1, 50)


def scored(tmp_path, project, tracker, max_trials=2):
    return Scored(build, objective=keras_tuner.Objective("score", "max"), max_trials=max_trials,
                  directory=str(tmp_path / "d"), project_name=project, overwrite=True, seed=1,
                  tracking=tracker)


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory):
    """An MLflow SQLite store with its tables made (~5 s), copied by each test (instant)."""
    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(tmp_path, empty_store):
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path}/mlflow.db"


def test_searches_given_one_spool_dir_neither_wait_on_nor_take_each_other_s_sends(
        tmp_path, monkeypatch, store):
    # Was: one in-flight file, locked across each send, for every search given
    # the spool directory: search "b" waited for "a"'s send to MLflow to end.
    spool = tmp_path / "spool"
    sending, release = threading.Event(), threading.Event()
    real = MlflowClient.log_batch

    def log_batch(self, *args, **kwargs):
        if threading.current_thread().name == "search-a" and not release.is_set():
            sending.set()  # "a" is in the middle of a send (a slow server)
            release.wait(60)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", log_batch)
    a = scored(tmp_path, "a", MlflowTracker(tracking_uri=store, spool_dir=spool))
    b = scored(tmp_path, "b", MlflowTracker(tracking_uri=store, spool_dir=spool))
    thread_a = threading.Thread(target=a.search, name="search-a", daemon=True)
    thread_a.start()
    try:
        assert sending.wait(60)
        in_flight = Spool.inflight_files(spool)
        assert len(in_flight) == 1  # "a"'s, being sent
        thread_b = threading.Thread(target=b.search, name="search-b", daemon=True)
        thread_b.start()
        thread_b.join(20)
        assert not thread_b.is_alive(), "search b waited on search a's send"
        # "b" left "a"'s records being sent where they were.
        assert Spool.inflight_files(spool) == in_flight and not Spool(spool).files()
    finally:
        release.set()
        thread_a.join(60)
    for project, tuner in (("a", a), ("b", b)):
        (parent,), trials = runs_of(store, project)
        assert parent.info.status == "FINISHED"
        assert sorted(r.data.tags["metanas.trial_id"] for r in trials) == sorted(
            tuner.oracle.trials)
    assert not list(spool.glob("*.jsonl"))  # both ends removed their in-flight files


def test_records_a_live_search_keeps_in_flight_are_recovered_only_once_it_lets_go(tmp_path):
    records = [{"id": "a", "type": "trial", "experiment": "e", "key": "k"}]
    mine, other = Spool(tmp_path, "tuner0"), Spool(tmp_path, "tuner0")
    assert mine.inflight != other.inflight
    with mine.write_ahead(records) as ahead:
        ahead.keep = True  # not sent, and only in memory but for this file
    assert other.recover_inflight() == 0  # its owner is alive and holds them
    other.drop_inflight()
    assert mine.inflight.read_bytes()  # not removed: it holds records
    mine.drop_inflight()  # the end of its search: it lets go of them
    assert other.recover_inflight() == 1
    assert Spool.read(other.path) == records
    other.drop_inflight()  # emptied, no one holds it: removed
    assert not list(tmp_path.glob("*.inflight.jsonl"))


def test_the_end_of_a_search_removes_the_empty_in_flight_files_of_earlier_versions(tmp_path):
    # Was: an earlier version's <name>.inflight.jsonl, emptied by a recovery,
    # stayed for good once its search was over.
    emptied, kept, held = (tmp_path / f"tuner{i}.inflight.jsonl" for i in (1, 2, 3))
    emptied.touch()
    kept.write_text(json.dumps({"id": "a", "type": "trial", "key": "k"}) + "\n")
    held.touch()
    with open(held, "rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # a live process of that version is sending
        Spool(tmp_path, "tuner0").drop_inflight()
        assert held.exists()
    assert not emptied.exists()
    assert kept.read_text()  # records: for a recovery, never removed


def trial_record(key, trial_id, *, rebuilt=False):
    tags = {rec.ROLE_TAG: "trial", TRIAL: trial_id}
    record = {"id": os.urandom(8).hex(), "type": "trial", "experiment": "e", "key": key,
              "parent": {"key": "s/search", "name": "search", "tags": {}},
              "name": f"trial-{trial_id}", "status": "FINISHED", "params": {"u": "3"},
              "metrics": [["objective", 3.0, 1, 0]], "tags": tags}
    if rebuilt:
        record["tags"][REBUILT] = "from the oracle"
        record["if_unfinished"] = True
    else:
        record["metrics"].append(["duration_s", 2.0, 2, 0])
    return record


def test_a_late_record_of_a_rebuilt_trial_under_its_key_updates_its_run_and_drops_the_tag(
        store):
    # Was: the run stayed tagged rebuilt, though it held the trial's own record.
    client = MlflowClient(tracking_uri=store)
    rec.apply_record(client, trial_record("s/trial/1", "1", rebuilt=True), rec.RunCache())
    rec.apply_record(client, trial_record("s/trial/1", "1"), rec.RunCache())
    exp_id = client.get_experiment_by_name("e").experiment_id
    (run,) = client.search_runs([exp_id], filter_string=f"tags.`{TRIAL}` = '1'")
    assert REBUILT not in run.data.tags and run.info.status == "FINISHED"
    assert run.data.metrics["duration_s"] == 2.0  # the worker's own record's


@pytest.mark.parametrize("failing", ["set_terminated", "delete_tag"])
def test_a_record_that_failed_before_its_status_is_applied_in_full_when_sent_again(
        store, monkeypatch, failing):
    # Was: the records tag went with the last batch, before the status: a store
    # error in between (a server down, a locked sqlite) left the run RUNNING for
    # good, its record skipped as applied when sent again (a review's finding).
    client = MlflowClient(tracking_uri=store)
    rec.apply_record(client, trial_record("s/trial/1", "1", rebuilt=True), rec.RunCache())
    client.update_run(rec.find_run(client, client.get_experiment_by_name("e").experiment_id,
                                   "s/trial/1").info.run_id, status="RUNNING")
    record = trial_record("s/trial/1", "1")

    def down(*args, **kwargs):
        raise MlflowException("the server went away", error_code="TEMPORARILY_UNAVAILABLE")

    with monkeypatch.context() as patch:
        patch.setattr(MlflowClient, failing, down)
        with pytest.raises(MlflowException):
            rec.apply_record(client, record, rec.RunCache())
    rec.apply_record(client, record, rec.RunCache())  # sent again (the spool, `sync`)
    exp_id = client.get_experiment_by_name("e").experiment_id
    (run,) = client.search_runs([exp_id], filter_string=f"tags.`{TRIAL}` = '1'")
    assert run.info.status == "FINISHED" and REBUILT not in run.data.tags
    assert record["id"] in run.data.tags[rec.RECORDS_TAG].split(",")


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_a_record_applied_again_in_full_logs_no_metric_twice(tmp_path, store, kind,
                                                              monkeypatch):
    # Was: a file: store appended a re-applied record's metrics again (a record
    # cut off between its run's status and its records tag is applied in full).
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3.17 asks for it
    uri = (tmp_path / "mlruns").as_uri() if kind == "file" else store
    client = MlflowClient(tracking_uri=uri)
    record = trial_record("s/trial/1", "1")
    record["metrics"] += [["loss", float("nan"), 5, 0], ["loss", 0.5, 6, 1]]
    rec.apply_record(client, record, rec.RunCache())
    (run,) = client.search_runs([client.get_experiment_by_name("e").experiment_id],
                                filter_string=f"tags.`{TRIAL}` = '1'")
    client.delete_tag(run.info.run_id, rec.RECORDS_TAG)  # as if cut off before it
    again = dict(record, metrics=record["metrics"] + [["loss", 0.25, 7, 2]])
    rec.apply_record(client, again, rec.RunCache())
    history = {key: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]
               for key in ("objective", "duration_s", "loss")}
    assert history["objective"] == [(0, 3.0)] and history["duration_s"] == [(0, 2.0)]
    loss = sorted(history["loss"])
    assert len(loss) == 3 and math.isnan(loss[0][1]) and loss[1:] == [(1, 0.5), (2, 0.25)]
    # A replay's records, each newer than what the run holds, read no history (a
    # read per record made a long search's replay quadratic, a re-review found).
    reads = []
    history_of = client.get_metric_history
    client.get_metric_history = lambda *args: reads.append(args) or history_of(*args)
    for step in range(3, 6):
        rec.apply_record(client, dict(again, id=f"later{step}", replay=True,
                                      metrics=[["loss", 0.1, 7 + step, step]]), rec.RunCache())
    assert reads == [] and len(history_of(run.info.run_id, "loss")) == 6


def test_the_records_tag_of_a_run_this_process_knows_keeps_every_id(store):
    # Was: a record to a run in the process's cache wrote only its own id, so the
    # search's begin record sent again reopened its finished run.
    client, cache = MlflowClient(tracking_uri=store), rec.RunCache()
    base = {"experiment": "e", "key": "s/search", "tags": {rec.ROLE_TAG: "search"}}
    begin = {**base, "id": "begin", "type": "search_begin", "params": {"m": "1"}}
    progress = {**base, "id": "progress", "type": "search_progress",
                "metrics": [["best", 1.0, 1, 0]]}
    end = {**base, "id": "end", "type": "search_end", "status": "FINISHED"}
    for record in (begin, progress, end):
        rec.apply_record(client, record, cache)
    run = rec.find_run(client, client.get_experiment_by_name("e").experiment_id, "s/search")
    assert run.data.tags[rec.RECORDS_TAG].split(",") == ["begin", "progress", "end"]
    rec.apply_record(client, {**begin, "reopen": True}, rec.RunCache())
    assert client.get_run(run.info.run_id).info.status == "FINISHED"


def test_a_search_s_begin_record_sent_again_reopens_nothing(store):
    # The records tag keeps the last 40 ids: after 45 trials' progress the begin
    # record, sent again, was no longer known as applied and reopened the run.
    client, cache = MlflowClient(tracking_uri=store), rec.RunCache()
    base = {"experiment": "e", "key": "s/search", "tags": {rec.ROLE_TAG: "search"}}
    begin = {**base, "id": "begin", "type": "search_begin", "params": {"m": "1"},
             "start_ms": 1_000, "reopen": True}
    rec.apply_record(client, begin, cache)
    for i in range(45):
        rec.apply_record(client, {**base, "id": f"p{i}", "type": "search_progress",
                                  "metrics": [["best", 1.0, 2_000 + i, i]]}, cache)
    rec.apply_record(client, {**base, "id": "end", "type": "search_end",
                              "status": "FINISHED", "end_ms": 5_000}, cache)
    run_id = rec.find_run(client, client.get_experiment_by_name("e").experiment_id,
                          "s/search").info.run_id
    rec.apply_record(client, begin, rec.RunCache())  # a replay
    assert client.get_run(run_id).info.status == "FINISHED"
    # The search resumed, on a host whose clock is behind the first one's.
    resumed = {**begin, "id": "begin2", "start_ms": 4_000}
    rec.apply_record(client, resumed, rec.RunCache())
    assert client.get_run(run_id).info.status == "RUNNING"
    assert client.get_run(run_id).data.tags[rec.BEGINS_TAG] == "begin,begin2"


class Killed(BaseException):
    """A SIGKILL, at the point it is raised."""


def chief_search(tmp_path, monkeypatch, uri, worker_ends_trial=None):
    """A search as its chief sees it (no trial's record is its own), in this process:
    ``worker_ends_trial(tracker, tuner, trial)`` is what a worker did of each trial."""
    monkeypatch.setattr(tracker_module, "_is_chief", lambda: True)
    monkeypatch.setattr(MlflowTracker, "on_trial_end", worker_ends_trial or (lambda *_: None))
    tracker = MlflowTracker(tracking_uri=uri, spool_dir=tmp_path / "spool")
    tuner = scored(tmp_path, "search", tracker)
    tuner.search(verbose=0)
    return tracker, tuner


def runs_by_trial(client, view=ViewType.ACTIVE_ONLY):
    exp_id = client.get_experiment_by_name("search").experiment_id
    runs = {}
    for run in client.search_runs([exp_id], "tags.`metanas.role` = 'trial'", view):
        runs.setdefault(run.data.tags[TRIAL], []).append(run)
    return runs


def test_a_chief_rebuilds_the_runs_of_its_lost_workers_next_to_theirs_deleting_none(
        tmp_path, monkeypatch, store, caplog):
    # Was: the chief deleted its finished rebuilt run in favour of a dead
    # worker's RUNNING, empty one (logged under the worker's own key).
    client, lost = MlflowClient(tracking_uri=store), []

    def killed_while_logging(tracker, tuner, trial):
        if not lost:
            exp_id = client.get_experiment_by_name("search").experiment_id
            parent = rec.find_run(client, exp_id, tracker.parent_key)
            client.create_run(exp_id, tags={rec.KEY_TAG: f"own/trial/{trial.trial_id}",
                                            rec.ROLE_TAG: "trial", TRIAL: trial.trial_id,
                                            "mlflow.parentRunId": parent.info.run_id})
            lost.append(trial.trial_id)

    _, tuner = chief_search(tmp_path, monkeypatch, store, killed_while_logging)
    runs = runs_by_trial(client)
    assert sorted(runs) == sorted(tuner.oracle.trials)
    for trial_id, trial in tuner.oracle.trials.items():
        (done,) = [r for r in runs[trial_id] if r.info.status == "FINISHED"]
        assert done.data.metrics["objective"] == trial.score and REBUILT in done.data.tags
    assert [r.info.status for r in runs[lost[0]]].count("RUNNING") == 1  # the dead worker's
    assert not runs_by_trial(client, ViewType.DELETED_ONLY)
    assert "(a worker killed or unable to reach MLflow)" in caplog.text


def test_a_worker_s_late_record_never_deletes_the_rebuilt_run_of_its_trial(
        tmp_path, monkeypatch, store):
    # Was: a worker's record, under a key of its own, deleted the finished
    # rebuilt run right after creating its run: killed then, nothing was left.
    client = MlflowClient(tracking_uri=store)
    tracker, tuner = chief_search(tmp_path, monkeypatch, store)
    trial = tuner.oracle.trials[min(tuner.oracle.trials)]
    # Its record, as the worker's tracker made it (with no shared project directory).
    tracker._is_worker, tracker.search_id = True, None
    record = tracker._stamp(tracker._trial_record(tuner, trial, {
        "start_ms": rec.now_ms(), "start": 0.0, "metrics": [], "step": 0, "artifacts": {}}))

    def killed(*args, **kwargs):
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(MlflowClient, "log_batch", killed)
        with pytest.raises(Killed):
            rec.apply_record(client, record, rec.RunCache())
    (rebuilt,) = [r for r in runs_by_trial(client)[trial.trial_id] if r.info.status == "FINISHED"]
    assert REBUILT in rebuilt.data.tags and rebuilt.data.metrics["objective"] == trial.score
    assert not runs_by_trial(client, ViewType.DELETED_ONLY)
    # Recovered later (`metanas sync`): a second run of the trial, a duplicate, never a loss.
    rec.apply_record(client, record, rec.RunCache())
    assert [r.info.status for r in runs_by_trial(client)[trial.trial_id]] == ["FINISHED"] * 2


def test_a_chief_that_cannot_query_mlflow_rebuilds_no_run(tmp_path, monkeypatch):
    # Was: it spooled a rebuilt run of every ended trial, its workers' or not.
    tracker, tuner = chief_search(tmp_path, monkeypatch, f"http://127.0.0.1:{free_port()}")
    waiting = [r for p in Spool(tracker.spool_dir).files() for r in Spool.read(p)]
    assert [r["type"] for r in waiting] == ["search_begin", "search_end"]


@pytest.mark.slow
def test_a_chief_rebuilds_the_run_of_a_worker_killed_before_it_logged_its_trial(
        tmp_path, monkeypatch, empty_store):
    # Was: the worker's trial, ended in the chief's oracle, never had a run.
    # The chief runs here (one process fewer to start) and the workers log to
    # the same SQLite store: a server would take ~18 s to start on 2 cores.
    from tests.tuners.synthetic_search import make_tuner
    from tests.tuners.test_distributed import start, trials_on_disk, wait

    shutil.copy(empty_store, tmp_path / "mlflow.db")  # made before three processes use it
    store = f"sqlite:///{tmp_path}/mlflow.db"
    port = free_port()
    # tuner1 ends its first trial only once tuner0 has begun one (which kills it as it ends).
    env = {"MLFLOW_TRACKING_URI": store, "KILL_BEFORE_RECORD": "tuner0", "HEARTBEAT_TIMEOUT": "1",
           "WAIT_FOR_WORKERS": "2", "TRIAL_SECONDS": "0.1"}
    workers = [start("random", tmp_path, 3, tuner_id=f"tuner{i}", port=port, script=SCRIPT,
                     **env) for i in range(2)]
    for name, value in {**env, "KERASTUNER_TUNER_ID": "chief", "KERASTUNER_ORACLE_IP": "127.0.0.1",
                        "KERASTUNER_ORACLE_PORT": str(port)}.items():
        monkeypatch.setenv(name, value)
    try:
        make_tuner("random", str(tmp_path), 3, overwrite=True).search(verbose=0)
    finally:
        outputs = [wait(worker, timeout=120) for worker in workers]
    assert outputs[0][0] == -9, outputs[0][1][-3000:]  # killed as its trial ended
    assert outputs[1][0] == 0, outputs[1][1][-3000:]
    trials = trials_on_disk(tmp_path)
    (parent,), runs = runs_of(store, "search")
    by_trial = {}
    for run in runs:
        by_trial.setdefault(run.data.tags["metanas.trial_id"], []).append(run)
    assert sorted(by_trial) == sorted(trials) and all(len(r) == 1 for r in by_trial.values())
    lost = (tmp_path / "ran_tuner0.txt").read_text().split()
    assert len(lost) == 1
    for trial_id, (run,) in by_trial.items():
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.metrics["objective"] == pytest.approx(trials[trial_id]["score"])
        assert (REBUILT in run.data.tags) == (trial_id in lost)


@pytest.mark.slow
def test_a_distributed_chief_stopped_by_failed_trials_marks_its_parent_run_failed(
        tmp_path, monkeypatch, empty_store):
    # The chief's search bypassed the tracker's error report: its parent run stayed
    # RUNNING, with no error and no summary (a single process marks it FAILED).
    from tests.tuners.synthetic_search import make_tuner
    from tests.tuners.test_distributed import start, wait

    shutil.copy(empty_store, tmp_path / "mlflow.db")
    store = f"sqlite:///{tmp_path}/mlflow.db"
    port = free_port()
    env = {"MLFLOW_TRACKING_URI": store, "FAIL_TRIALS": "1", "FAILING_WORKERS": "2",
           "TRIAL_SECONDS": "0.1"}
    workers = [start("random", tmp_path, 20, tuner_id=f"tuner{i}", port=port, script=SCRIPT,
                     **env) for i in range(2)]
    for name, value in {**env, "KERASTUNER_TUNER_ID": "chief", "KERASTUNER_ORACLE_IP": "127.0.0.1",
                        "KERASTUNER_ORACLE_PORT": str(port)}.items():
        monkeypatch.setenv(name, value)
    try:
        with pytest.raises(RuntimeError, match="consecutive failures"):
            make_tuner("random", str(tmp_path), 20, overwrite=True).search(verbose=0)
    finally:
        for worker in workers:
            wait(worker, timeout=120)
    (parent,), _ = runs_of(store, "search")
    assert parent.info.status == "FAILED"
    assert "fit exploded" in parent.data.tags["error"]  # the last failure's, as in one process


def test_one_key_in_two_experiments_is_two_runs_to_one_cache(store):
    # Was: the cache held runs by key alone, so a search resumed under another
    # experiment name, after replaying a record of its first one, reopened and
    # nested its new runs under the parent run in the first experiment.
    client, cache = MlflowClient(tracking_uri=store), rec.RunCache()
    for experiment in ("expA", "expB"):
        rec.apply_record(client, {"id": f"begin-{experiment}", "type": "search_begin",
                                  "experiment": experiment, "key": "s/search", "reopen": True,
                                  "params": {"m": "1"}, "tags": {rec.ROLE_TAG: "search"}},
                         cache)
    parents = {e: rec.find_run(client, client.get_experiment_by_name(e).experiment_id,
                               "s/search") for e in ("expA", "expB")}
    assert parents["expA"].info.run_id != parents["expB"].info.run_id
    assert parents["expB"].data.tags[rec.BEGINS_TAG] == "begin-expB"


def test_a_rebuilt_run_is_not_logged_again_in_another_experiment_of_its_search(store):
    # Was: a search resumed under another experiment name while MLflow was down
    # spooled every ended trial as rebuilt, and each was logged again in the new
    # experiment, though its run was in the first one.
    client = MlflowClient(tracking_uri=store)
    rec.apply_record(client, trial_record("s/trial/1", "1"), rec.RunCache())  # in "e"
    rebuilt = dict(trial_record("s/trial/1", "1", rebuilt=True), experiment="e2")
    rec.apply_record(client, {**rebuilt, "also_in": ["e"]}, rec.RunCache())
    assert client.search_runs([client.get_experiment_by_name("e2").experiment_id],
                              "tags.`metanas.role` = 'trial'") == []
    rec.apply_record(client, {**rebuilt, "also_in": []}, rec.RunCache())  # its search's own
    assert len(client.search_runs([client.get_experiment_by_name("e2").experiment_id],
                                  "tags.`metanas.role` = 'trial'")) == 1


def test_a_param_longer_than_mlflow_keeps_is_cut_visibly_and_kept_whole_beside(store):
    # Was cut at 6000 characters without a word (an AutoKeras search's initial_hps).
    client = MlflowClient(tracking_uri=store)
    long = "[" + ", ".join(f"{{'units': {i}}}" for i in range(1000)) + "]"
    record = trial_record("s/trial/1", "1")
    record["params"] = {"setting.initial_hps": long, "u": "3"}
    for _ in range(2):  # sent again (the spool, `sync`): the same, no MLflow error
        rec.apply_record(client, record, rec.RunCache())
    exp_id = client.get_experiment_by_name("e").experiment_id
    (run,) = client.search_runs([exp_id], filter_string=f"tags.`{TRIAL}` = '1'")
    shown = run.data.params["setting.initial_hps"]
    assert len(shown) == 6000 and shown.startswith(long[:5000])
    assert shown.endswith("... (cut; whole: artifact params/setting.initial_hps.txt)")
    assert run.data.params["u"] == "3"
    path = client.download_artifacts(run.info.run_id, "params/setting.initial_hps.txt",
                                     str(store.split("///")[1] + ".artifacts"))
    with open(path, encoding="utf-8") as handle:
        assert handle.read() == long


def test_a_long_param_of_an_odd_name_or_sent_anew_keeps_its_file_right(store):
    client = MlflowClient(tracking_uri=store)
    odd = "é" * 249  # a file name too long in UTF-8 bytes (failed the record for good)
    record = trial_record("s/trial/1", "1")
    record["params"] = {odd: "a" * 7000, "setting.x": "b" * 7000}
    rec.apply_record(client, record, rec.RunCache())
    later = trial_record("s/trial/1", "1")  # a resumed search's other long value
    later["params"] = {"setting.x": "c" * 7000}
    rec.apply_record(client, later, rec.RunCache())
    exp_id = client.get_experiment_by_name("e").experiment_id
    (run,) = client.search_runs([exp_id], filter_string=f"tags.`{TRIAL}` = '1'")
    files = {f.path for f in client.list_artifacts(run.info.run_id, "params")}
    assert files == {"params/setting.x.txt", f"params/{'_' * 100}_"
                     f"{hashlib.sha256(rec.safe_key(odd).encode()).hexdigest()[:8]}.txt"}
    # MLflow keeps the first value; its file is the first value's too.
    assert run.data.params["setting.x"].startswith("b" * 5000)
    path = client.download_artifacts(run.info.run_id, "params/setting.x.txt",
                                     str(store.split("///")[1] + ".artifacts"))
    with open(path, encoding="utf-8") as handle:
        assert handle.read() == "b" * 7000
