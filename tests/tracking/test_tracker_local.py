"""MLflow tracking against local SQLite stores, with real (tiny) KerasTuner searches."""

import json
import os
import pathlib
import subprocess
import sys
import warnings

import pytest
from mlflow.tracking import MlflowClient

from metanas.tracking import MlflowTracker
from metanas.tracking.tracker import SEARCH_FILE, SPOOL_DIRNAME
from metanas.tuners import EvolutionSearch, RandomSearch
from tests.tracking.helpers import X, Y, TinyModel, check_search_logged, runs_of

FAULTS = [
    {"fault": "build"}, {"fault": "none"}, {"fault": "fit"}, {"fault": "nan"},
    {"fault": "none", "units": 8},
]


def evolution(tmp_path, tracking, **kwargs):
    # No race (its re-evaluations make the best-so-far a mean): the logging is tested.
    settings = dict(max_trials=6, seed=4, population_size=3, tournament_size=2,
                    racing_fraction=0.0)
    settings.update(kwargs)
    return EvolutionSearch(
        TinyModel(), objective="loss", initial_hps=FAULTS, max_consecutive_failed_trials=5,
        directory=str(tmp_path / "runs"), project_name="tiny", tracking=tracking, **settings,
    )


def test_search_is_one_parent_run_with_one_nested_run_per_trial(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tuner = evolution(tmp_path, MlflowTracker(tracking_uri=uri))
    tuner.search(X, Y, epochs=2, verbose=0)
    parent, by_trial = check_search_logged(uri, "tiny", tuner, epochs=2)
    trials = [tuner.oracle.trials[t] for t in sorted(tuner.oracle.trials, key=int)]
    assert len(trials) == 6
    assert [t.status for t in trials[:5]] == ["FAILED", "COMPLETED", "FAILED", "FAILED", "COMPLETED"]
    failed = sum(t.status == "FAILED" for t in trials)

    # The parent: readable name, strategy and settings, objective, the curve.
    assert parent.info.run_name == "evolution-tiny" and parent.info.status == "FINISHED"
    assert parent.data.params["strategy"] == "evolution"
    assert parent.data.params["setting.population_size"] == "3"
    assert parent.data.params["setting.tournament_size"] == "2"
    assert parent.data.params["objective"] == "loss (min)"
    client = MlflowClient(tracking_uri=uri)
    best = client.get_metric_history(parent.info.run_id, "best_so_far")
    running, expected = None, []
    for step, trial_id in enumerate(sorted(tuner.oracle.trials, key=int)):
        trial = tuner.oracle.trials[trial_id]
        if trial.status == "COMPLETED":
            running = trial.score if running is None else min(running, trial.score)
        if running is not None:
            expected.append((step, pytest.approx(running)))
    assert [(m.step, m.value) for m in best] == expected
    assert parent.data.metrics["best_so_far"] == pytest.approx(tuner.oracle.get_best_trials(1)[0].score)
    assert parent.data.metrics["strategy/population/size"] == 3.0
    assert parent.data.metrics["trials_failed"] == failed
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"search_space.json", "trials.csv", "search_curve.png"} <= names
    space = json.loads(pathlib.Path(client.download_artifacts(
        parent.info.run_id, "search_space.json", str(tmp_path))).read_text())
    assert {p["config"]["name"] for p in space["space"]} >= {"fault", "units", "lr"}
    table = pathlib.Path(client.download_artifacts(
        parent.info.run_id, "trials.csv", str(tmp_path))).read_text().splitlines()
    assert table[0].startswith("trial_id,status,score") and len(table) == 7
    png = pathlib.Path(client.download_artifacts(parent.info.run_id, "search_curve.png", str(tmp_path)))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # A completed trial has its model; a failed one, its traceback.
    completed = next(r for (r,) in by_trial.values() if r.info.status == "FINISHED")
    model_files = {a.path for a in client.list_artifacts(completed.info.run_id, "model")}
    assert model_files == {"model/summary.txt", "model/architecture.json"}
    assert completed.data.metrics["cost/params"] > 0
    (failed,) = by_trial[trials[0].trial_id]  # the model could not be built
    assert "traceback.txt" in {a.path for a in client.list_artifacts(failed.info.run_id)}
    # Nothing was left waiting.
    assert not list((tmp_path / "runs" / SPOOL_DIRNAME).rglob("*.jsonl"))


def test_resumed_search_continues_its_parent_run_and_overwrite_starts_a_new_one(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    first = RandomSearch(
        TinyModel(), objective="loss", max_trials=2, seed=1, directory=str(tmp_path),
        project_name="resume", tracking=MlflowTracker(tracking_uri=uri),
        hyperparameters=_no_faults(),
    )
    first.search(X, Y, epochs=1, verbose=0)
    search_id = json.loads((tmp_path / "resume" / SEARCH_FILE).read_text())["search_id"]
    resumed = RandomSearch(
        TinyModel(), objective="loss", max_trials=4, seed=1, directory=str(tmp_path),
        project_name="resume", overwrite=False, tracking=MlflowTracker(tracking_uri=uri),
        hyperparameters=_no_faults(),
    )
    resumed.search(X, Y, epochs=1, verbose=0)
    assert len(resumed.oracle.trials) == 4
    parent, _ = check_search_logged(uri, "resume", resumed, epochs=1)
    assert parent.data.tags["metanas.search_id"] == search_id
    assert parent.data.metrics["trials_completed"] == 4.0

    fresh = RandomSearch(
        TinyModel(), objective="loss", max_trials=1, seed=1, directory=str(tmp_path),
        project_name="resume", overwrite=True, tracking=MlflowTracker(tracking_uri=uri),
        hyperparameters=_no_faults(),
    )
    fresh.search(X, Y, epochs=1, verbose=0)
    parents, _ = runs_of(uri, "resume")
    assert len(parents) == 2
    assert {p.data.tags["metanas.search_id"] for p in parents} - {search_id}


@pytest.mark.parametrize("search_id", [None, "given-id"])
def test_a_search_resumed_under_another_experiment_name_logs_nothing_twice(
        tmp_path, caplog, search_id):
    # Was: every earlier trial logged again in the new experiment as a rebuilt run,
    # with a warning that the search had been killed.
    uri = f"sqlite:///{tmp_path}/mlflow.db"

    def search(experiment, max_trials, overwrite):
        tuner = RandomSearch(
            TinyModel(), objective="loss", max_trials=max_trials, seed=1,
            directory=str(tmp_path), project_name="moved", overwrite=overwrite,
            tracking=MlflowTracker(tracking_uri=uri, experiment_name=experiment,
                                   search_id=search_id),
            hyperparameters=_no_faults())
        tuner.search(X, Y, epochs=1, verbose=0)
        return tuner

    search("expA", 2, True)
    search("expB", 3, False)
    assert ("this search was tracked in MLflow experiment(s) 'expA' before: its runs so far "
            "stay there, and a new parent run in 'expB' holds the rest") in caplog.text
    search("expA", 4, False)  # and back: its expB run is not logged again in expA
    assert "killed" not in caplog.text
    trials = {}
    for experiment, count in (("expA", 3), ("expB", 1)):
        (parent,), children = runs_of(uri, experiment)
        assert len(children) == count
        assert not [c for c in children if "metanas.rebuilt" in c.data.tags]
        assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
        trials[experiment] = {c.data.tags["metanas.trial_id"] for c in children}
    assert trials["expA"].isdisjoint(trials["expB"])


def _no_faults():
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    hp.Fixed("fault", "none")
    return hp


def test_tracking_false_logs_nothing_and_bad_values_are_refused(tmp_path):
    uri = os.environ["MLFLOW_TRACKING_URI"]
    tuner = RandomSearch(
        TinyModel(), objective="loss", max_trials=1, seed=1, directory=str(tmp_path),
        project_name="untracked-" + tmp_path.name, tracking=False, hyperparameters=_no_faults(),
    )
    tuner.search(X, Y, epochs=1, verbose=0)
    assert tuner.tracker is None
    assert MlflowClient(tracking_uri=uri).get_experiment_by_name(tuner.project_name) is None
    with pytest.raises(ValueError, match="tracking must be True, False or a tracker"):
        RandomSearch(TinyModel(), objective="loss", tracking="yes", directory=str(tmp_path))
    with pytest.raises(ValueError, match="search_id may hold"):
        MlflowTracker(search_id="a b")
    with pytest.raises(ValueError, match="log_models must be True or False"):
        MlflowTracker(log_models="no")


def test_default_store_is_mlflow_db_in_the_working_directory(tmp_path):
    code = (
        "from tests.tracking.helpers import X, Y, TinyModel\n"
        "from tests.tracking.test_tracker_local import _no_faults\n"
        "from metanas.tuners import EvolutionSearch\n"
        "t = EvolutionSearch(TinyModel(), objective='loss', max_trials=2, seed=0,\n"
        "    population_size=2, directory='runs', project_name='default_store',\n"
        "    hyperparameters=_no_faults())\n"
        "t.search(X, Y, epochs=2, verbose=0)\n"
        "import json; print(json.dumps(sorted(t.oracle.trials)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = str(pathlib.Path(__file__).resolve().parents[2])
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "mlflow.db").is_file() and (tmp_path / "mlruns").is_dir()
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    parents, children = runs_of(uri, "default_store")
    assert len(parents) == 1 and parents[0].info.run_name == "evolution-default_store"
    assert sorted(c.data.tags["metanas.trial_id"] for c in children) == json.loads(
        result.stdout.strip().splitlines()[-1]
    )
    assert all(c.info.status == "FINISHED" for c in children)
    client = MlflowClient(tracking_uri=uri)
    assert all(
        len(client.get_metric_history(c.info.run_id, "accuracy")) == 2 for c in children
    )


def test_odd_names_and_choice_values_are_all_logged(tmp_path):
    # Characters MLflow refuses, path-like names, names equal once cleaned, and
    # choice values (one empty) in the RL controller's diagnostics: every run
    # finishes with every value logged, under a key of its own.
    import keras

    from metanas.tracking.records import safe_key
    from metanas.tracking.spool import REJECTED_NAME
    from metanas.tuners import RLControllerSearch

    def build(hp):
        inputs = keras.Input(shape=(4,))
        act = {"relu*[x]": "relu", "tanh?": "tanh"}[hp.Choice("act", ["relu*[x]", "tanh?"])]
        units = hp.Choice("block//units", [2, 4]) + hp.Choice("lr(1)", [1, 2])
        units += hp.Choice("lr[1]", [3, 4]) + len(hp.Choice("suffix", ["", "_wide"]))
        hidden = keras.layers.Dense(units, activation=act)(inputs)
        model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden))
        model.compile("adam", "sparse_categorical_crossentropy")
        return model

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tuner = RLControllerSearch(
        build, objective="loss", max_trials=3, seed=1, num_initial_points=1,
        directory=str(tmp_path / "runs"), project_name="odd",
        tracking=MlflowTracker(tracking_uri=uri),
    )
    tuner.search(X, Y, epochs=1, verbose=0)
    (parent,), children = runs_of(uri, "odd")
    assert parent.info.status == "FINISHED" and "best_score" in parent.data.metrics
    assert len(children) == 3 and all(c.info.status == "FINISHED" for c in children)
    for child in children:
        values = tuner.oracle.trials[child.data.tags["metanas.trial_id"]].hyperparameters.values
        for name, value in values.items():
            assert child.data.params[safe_key(name)] == str(value)
    probabilities = {k.split("policy/prob/act/")[1]: v for k, v in parent.data.metrics.items()
                     if "policy/prob/act/" in k}
    assert sorted(k[:-9] for k in probabilities) == ["relu__x_", "tanh_"]  # + _<hash>
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    empty = [k for k in parent.data.metrics if k.startswith("strategy/policy/prob/suffix/")]
    assert len(empty) == 2  # "" and "_wide"
    assert not list((tmp_path / "runs" / SPOOL_DIRNAME).rglob("*.jsonl"))
    assert not list((tmp_path / "runs").rglob(REJECTED_NAME))


def test_with_several_executions_metric_steps_are_epochs(tmp_path):
    import keras_tuner

    space = keras_tuner.HyperParameters()
    space.Fixed("fault", "none")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tuner = RandomSearch(
        TinyModel(), objective="loss", max_trials=1, seed=2, executions_per_trial=2,
        hyperparameters=space, directory=str(tmp_path / "runs"), project_name="twice",
        tracking=MlflowTracker(tracking_uri=uri),
    )
    tuner.search(X, Y, epochs=3, verbose=0)
    (_,), (child,) = runs_of(uri, "twice")
    history = MlflowClient(tracking_uri=uri).get_metric_history(child.info.run_id, "loss")
    assert sorted(m.step for m in history) == [0, 0, 1, 1, 2, 2]  # two executions, 3 epochs


def test_a_failed_search_resumed_to_the_end_loses_its_error_tag(tmp_path):
    class Flaky(TinyModel):
        fits = 0

        def fit(self, hp, model, *args, **kwargs):
            Flaky.fits += 1
            if Flaky.fits <= 2:
                raise RuntimeError("injected: the first two trainings fail")
            return super().fit(hp, model, *args, **kwargs)

    import keras_tuner

    space = keras_tuner.HyperParameters()
    space.Fixed("fault", "none")
    uri = f"sqlite:///{tmp_path}/mlflow.db"

    def tuner(max_trials=3, **kwargs):
        return RandomSearch(Flaky(), objective="loss", max_trials=max_trials, seed=4,
                            hyperparameters=space,
                            max_consecutive_failed_trials=2, directory=str(tmp_path / "runs"),
                            project_name="again", tracking=MlflowTracker(tracking_uri=uri),
                            **kwargs)

    with pytest.raises(RuntimeError, match="consecutive failures"), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tuner().search(X, Y, epochs=1, verbose=0)
    # The curve of a search with no score is drawn without matplotlib's
    # empty-legend warning.
    assert not [w for w in caught if "legend" in str(w.message)]
    (parent,), children = runs_of(uri, "again")
    assert parent.info.status == "FAILED"
    # Why it stopped, and the last failure's own error (was: that error alone).
    assert parent.data.tags["error"].startswith(
        "RuntimeError: Number of consecutive failures exceeded the limit of 2.")
    assert parent.data.tags["error"].endswith("injected: the first two trainings fail")
    # Neither a best score nor an objective from trials that all failed.
    assert "best_score" not in parent.data.metrics and "best_so_far" not in parent.data.metrics
    assert [c.data.metrics.get("objective") for c in children] == [None, None]
    # The failed search's parent holds its summary too.
    assert parent.data.metrics["trials_failed"] == 2.0
    assert parent.data.metrics["trials_completed"] == 0.0
    client = MlflowClient(tracking_uri=uri)
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"trials.csv", "search_curve.png", "search_space.json"} <= names
    resumed = tuner(overwrite=False, max_trials=4)
    resumed.search(X, Y, epochs=1, verbose=0)
    (parent,), _ = runs_of(uri, "again")
    assert parent.info.status == "FINISHED" and "error" not in parent.data.tags
    # MLflow keeps a param's first value; the budget in force is a tag.
    assert parent.data.params["max_trials"] == "3"
    assert parent.data.tags["metanas.max_trials"] == "4"


def test_store_targets_compare_sqlite_paths_absolutely(tmp_path, monkeypatch):
    from metanas.tracking.tracker import store_target

    monkeypatch.chdir(tmp_path)
    assert store_target("sqlite:///mlflow.db") == store_target(f"sqlite:///{tmp_path}/mlflow.db")
    assert store_target(f"sqlite:///{tmp_path}/mlflow.db") == f"sqlite:///{tmp_path}/mlflow.db"
    assert store_target("http://bob:hunter2@host:5000") == "http://bob:***@host:5000"


def test_a_failed_trial_s_nan_is_not_the_best_score():
    # keras-tuner's oracles rank a failed trial's NaN first: it was the search's
    # best_score and best_so_far until a trial completed.
    from types import SimpleNamespace

    from metanas.tracking.tracker import _best_score

    failed = SimpleNamespace(status="FAILED", score=float("nan"))
    done = SimpleNamespace(status="COMPLETED", score=0.25)
    ranked = SimpleNamespace(get_best_trials=lambda n: [failed, done][:n])
    assert _best_score(SimpleNamespace(oracle=ranked)) == 0.25
    alone = SimpleNamespace(get_best_trials=lambda n: [failed])
    assert _best_score(SimpleNamespace(oracle=alone)) is None


@pytest.mark.parametrize("saved", [
    {"search_id": "s", "experiment": "expA"},  # the file's earlier form
    {"search_id": "s", "experiment": "expA", "experiments": None},  # was: expA forgotten
    {"search_id": "s", "experiments": ["expA", "expA"]},  # was: expA asked for twice
])
def test_the_experiments_a_search_was_tracked_in_are_read_from_its_file(tmp_path, saved):
    tracker = MlflowTracker(experiment_name="expB")
    tracker._is_worker = False
    path = tmp_path / SEARCH_FILE
    tracker._note_experiment(path, saved)
    assert tracker._other_experiments == ["expA"]
    assert json.loads(path.read_text())["experiments"] == ["expA", "expB"]
