"""No kill loses a trial's run: write-ahead of what is sent, reconciling on resume.

A kill is simulated in-process by a `Killed` exception (a BaseException, like
KeyboardInterrupt) raised where a SIGKILL would strike, with the tracker's
error handler switched off, as a dead process runs none: what is on disk and
in MLflow is then what a real kill leaves, and the next tuner starts afresh.
"""

import keras_tuner
import pytest
from mlflow.tracking import MlflowClient

from metanas import cli
from metanas.tracking import MlflowTracker
from metanas.tracking.spool import Spool
from metanas.tracking.tracker import SPOOL_DIRNAME
from metanas.tuners import RandomSearch
from tests.tracking.helpers import runs_of


class Killed(BaseException):
    """Where a SIGKILL strikes: nothing after it runs."""


class Scored(RandomSearch):
    """A search with no training: a trial's score is its hyperparameter."""

    def run_trial(self, trial, *args, **kwargs):
        return float(trial.hyperparameters.get("u"))


def build(hp):
    hp.Int("u", 1, 50)


def tuner(tmp_path, tracking, max_trials=3, overwrite=False):
    return Scored(build, objective=keras_tuner.Objective("score", "max"), max_trials=max_trials,
                  directory=str(tmp_path / "d"), project_name="p", overwrite=overwrite, seed=1,
                  tracking=tracking)


def killed_search(tmp_path, tracker, monkeypatch):
    """Runs a search that `tracker` kills; as in a dead process, no error handler runs."""
    monkeypatch.setattr(MlflowTracker, "on_search_error", lambda *args: None)
    with pytest.raises(Killed):
        tuner(tmp_path, tracker).search()
    monkeypatch.undo()


def check_every_trial_logged_once(store, search):
    parents, trials = runs_of(store, "p")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    oracle_trials = search.oracle.trials
    by_id = {}
    for run in trials:
        by_id.setdefault(run.data.tags["metanas.trial_id"], []).append(run)
    assert sorted(by_id) == sorted(oracle_trials), "one run per trial of the oracle"
    for trial_id, runs in by_id.items():
        assert len(runs) == 1, f"trial {trial_id} logged twice"
        run, trial = runs[0], oracle_trials[trial_id]
        assert run.info.status == "FINISHED"
        assert run.data.params == {"u": str(trial.hyperparameters.get("u"))}
        assert run.data.metrics["objective"] == trial.score
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
    assert parents[0].data.metrics["trials_completed"] == len(oracle_trials)
    return by_id


def test_a_trial_ended_in_the_oracle_but_killed_before_tracking_is_logged_on_resume(
        tmp_path, monkeypatch):
    # Killed right after the oracle ended (and saved) trial 1, before the
    # tracker had its record: it was lost for good (5 runs for 6 trials).
    store = f"sqlite:///{tmp_path}/mlflow.db"

    class KilledAtTrialEnd(MlflowTracker):
        def on_trial_end(self, tuner_, trial):
            if trial.trial_id == "1":
                raise Killed
            super().on_trial_end(tuner_, trial)

    killed_search(tmp_path, KilledAtTrialEnd(tracking_uri=store), monkeypatch)
    assert [r.data.tags["metanas.trial_id"] for r in runs_of(store, "p")[1]] == ["0"]
    resumed = tuner(tmp_path, MlflowTracker(tracking_uri=store))
    assert resumed.oracle.trials["1"].status == "COMPLETED"  # not run again
    resumed.search()
    by_id = check_every_trial_logged_once(store, resumed)
    assert "metanas.rebuilt" in by_id["1"][0].data.tags  # why it has no epochs
    assert "metanas.rebuilt" not in by_id["0"][0].data.tags
    # Resuming again finds every run: nothing is rebuilt twice.
    tuner(tmp_path, MlflowTracker(tracking_uri=store)).search()
    check_every_trial_logged_once(store, resumed)


def kill_inside_mlflow(monkeypatch, trial_id):
    """Kills the process inside MLflow's first log_batch of ``trial_id``'s run:
    the run is created, RUNNING, with no params or metrics yet."""
    real = MlflowClient.log_batch

    def log_batch(self, run_id, *args, **kwargs):
        tags = {t.key: t.value for t in kwargs.get("tags") or []}
        if tags.get("metanas.trial_id") == trial_id:
            raise Killed
        return real(self, run_id, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", log_batch)


def test_a_run_half_written_by_a_killed_search_is_completed_on_resume_not_duplicated(
        tmp_path, monkeypatch):
    store = f"sqlite:///{tmp_path}/mlflow.db"
    kill_inside_mlflow(monkeypatch, "1")
    killed_search(tmp_path, MlflowTracker(tracking_uri=store), monkeypatch)
    half = [r for r in runs_of(store, "p")[1] if r.info.run_name.endswith("trial-1")]
    assert [(r.info.status, r.data.params) for r in half] == [("RUNNING", {})]
    resumed = tuner(tmp_path, MlflowTracker(tracking_uri=store))
    resumed.search()
    by_id = check_every_trial_logged_once(store, resumed)
    run = by_id["1"][0]
    assert run.info.run_id == half[0].info.run_id  # completed, not a second run
    assert "metanas.rebuilt" not in run.data.tags  # its own record, written ahead
    assert not list((tmp_path / "d" / SPOOL_DIRNAME).rglob("*.jsonl"))  # nothing left over


def test_sync_sends_what_a_killed_search_was_sending(tmp_path, monkeypatch, capsys):
    # Was: nothing spooled, `sync` sent nothing, the run stayed RUNNING forever.
    store = f"sqlite:///{tmp_path}/mlflow.db"
    kill_inside_mlflow(monkeypatch, "2")
    killed_search(tmp_path, MlflowTracker(tracking_uri=store), monkeypatch)
    assert cli.main(["tracking", "sync", str(tmp_path / "d"), "--tracking-uri", store]) == 0
    assert "sent 1 record(s); 0 still waiting; 0 rejected" in capsys.readouterr().out
    (run,) = [r for r in runs_of(store, "p")[1] if r.info.run_name.endswith("trial-2")]
    assert run.info.status == "FINISHED" and run.data.params and "objective" in run.data.metrics


def test_write_ahead_keeps_records_on_a_kill_and_only_a_dead_process_s_are_recovered(tmp_path):
    spool = Spool(tmp_path, "tuner0")
    records = [{"id": "a", "type": "trial", "experiment": "e", "key": "k"}]
    with spool.write_ahead(records) as ahead:
        assert ahead.written
        # Being sent by a live process (this one holds the lock): left alone.
        assert Spool(tmp_path, "tuner1").recover_inflight() == 0
        assert not spool.files()
    assert not spool.inflight.read_bytes()  # sent: nothing left
    with pytest.raises(Killed):
        with spool.write_ahead(records):
            raise Killed
    assert Spool(tmp_path, "tuner1").recover_inflight() == 1
    assert Spool.read(spool.path) == records and not spool.inflight.read_bytes()


def test_a_resumed_search_run_again_keeps_its_start_record(tmp_path, capsys):
    # A search resumed with a larger max_trials, then search() again on the same
    # tuner: MLflow refused its search_begin record (max_trials '2' -> '4'), and
    # its tags, settings and search_space.json went to rejected.jsonl.
    store = f"sqlite:///{tmp_path}/mlflow.db"
    tuner(tmp_path, MlflowTracker(tracking_uri=store), max_trials=2, overwrite=True).search()
    resumed = tuner(tmp_path, MlflowTracker(tracking_uri=store), max_trials=4)
    resumed.search()
    resumed.search()  # e.g. a notebook cell run again
    assert not list((tmp_path / "d").rglob("rejected.jsonl"))
    (parent,), trials = runs_of(store, "p")
    assert parent.info.status == "FINISHED" and len(trials) == 4
    assert parent.data.params["max_trials"] == "2"  # MLflow keeps a param's first value
    assert parent.data.tags["metanas.max_trials"] == "4"
    assert cli.main(["tracking", "sync", str(tmp_path / "d"), "--tracking-uri", store]) == 0


def test_sync_counts_records_a_search_had_rejected_and_exits_1(tmp_path, capsys):
    # Was: "0 rejected", exit 0, while rejected.jsonl held a refused record.
    (tmp_path / "d" / "p").mkdir(parents=True)
    spool = Spool(tmp_path / "d" / SPOOL_DIRNAME / "p")
    spool.reject({"id": "r", "type": "search_begin", "experiment": "p"}, "refused")
    store = f"sqlite:///{tmp_path}/mlflow.db"
    assert cli.main(["tracking", "sync", str(tmp_path / "d" / "p"), "--tracking-uri", store]) == 1
    out, err = capsys.readouterr()
    assert "sent 0 record(s); 0 still waiting; 1 rejected" in out
    assert "refused some records for good" in err
