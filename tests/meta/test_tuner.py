"""MetaTuner: recommend, search with real training, report back, resume."""

import json
import shutil
import warnings

import keras
import keras_tuner
import numpy as np
import optuna
import pytest

from metanas.demo import build_mlp, load_digits_split
from metanas.meta import MetaLearner, MetaTuner, TransferStore, search_score
from metanas.meta.learner import ObjectiveError, StrategyError
from metanas.tuners import (
    EvolutionOracle,
    RandomSearchOracle,
    ResumedSettingsWarning,
    SavedStateError,
    ShortSearchWarning,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def digits():
    (x, y), (x_val, y_val) = load_digits_split(0)
    return x[:400], y[:400], x_val[:150], y_val[:150]


def run(tmp_path, digits, storage, project, max_trials=3, **kwargs):
    x, y, x_val, y_val = digits
    keras.utils.set_random_seed(0)
    tuner = MetaTuner(
        build_mlp, objective="val_accuracy", max_trials=max_trials, seed=1,
        meta_storage=storage, directory=str(tmp_path), project_name=project, **kwargs,
    )
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=1, batch_size=64, verbose=0)
    return tuner


def test_meta_tuner_learns_in_production_and_resumes(tmp_path, digits):
    storage = f"sqlite:///{tmp_path}/meta.db"
    with pytest.warns(UserWarning, match="no meta-trial"):
        first = run(tmp_path, digits, storage, "digits-a")
    assert first.recommendation.source == "defaults"
    assert isinstance(first.oracle, EvolutionOracle) and len(first.oracle.trials) == 3
    trials = MetaLearner(storage).study.trials
    assert len(trials) == 1 and trials[0].user_attrs["per_task"].keys() == {"digits-a"}

    second = run(tmp_path, digits, storage, "digits-b", record=False)
    assert second.recommendation.source == "similar tasks: digits-a"
    # It starts from the elite digits-a left: digits-a's best configuration first.
    assert second.warm_start.source == "digits-a"
    first_best = first.oracle.get_best_trials(1)[0].hyperparameters.values
    assert second.oracle.trials[second.oracle.start_order[0]].hyperparameters.values == first_best
    assert len(MetaLearner(storage).study.trials) == 1  # record=False

    resumed = run(tmp_path, digits, storage, "digits-a", max_trials=5, overwrite=False)
    assert resumed.recommendation.source == "defaults"  # the saved choice, not a new one
    assert len(resumed.oracle.trials) == 5
    assert len(MetaLearner(storage).study.trials) == 2


def test_the_stand_in_oracle_before_the_data_is_seen_does_not_warn(tmp_path, recwarn):
    # Its settings are evolution's defaults, not the search's (chosen at `search`).
    MetaTuner(build_mlp, objective="val_accuracy", max_trials=2, record=False,
              meta_storage=f"sqlite:///{tmp_path}/meta.db", directory=str(tmp_path))
    assert not [w for w in recwarn if issubclass(w.category, ShortSearchWarning)]


def test_a_resumed_meta_search_keeps_the_oracle_keywords_given(tmp_path, digits, recwarn):
    # Was: the first search took the keyword given over the recommendation, the
    # resumed one the recommendation's (and warned of a change nobody made).
    storage = f"sqlite:///{tmp_path}/meta.db"
    first = run(tmp_path, digits, storage, "p", max_trials=2, record=False,
                incumbent_evaluations=2)
    resumed = run(tmp_path, digits, storage, "p", max_trials=3, record=False,
                  incumbent_evaluations=2, overwrite=False)
    assert first.oracle.incumbent_evaluations == resumed.oracle.incumbent_evaluations == 2
    assert resumed.strategy_settings["incumbent_evaluations"] == 2
    assert not [w for w in recwarn if issubclass(w.category, ResumedSettingsWarning)]


def test_an_oracle_given_to_a_meta_tuner_is_refused_before_the_study_opens(tmp_path):
    with pytest.raises(ValueError, match="MetaTuner chooses its strategy when it sees the data"):
        MetaTuner(build_mlp, objective="val_accuracy", oracle=EvolutionOracle(),
                  meta_storage=f"sqlite:///{tmp_path}/meta.db", directory=str(tmp_path))
    assert not (tmp_path / "meta.db").exists()


@pytest.mark.parametrize("tuner_id", ["chief", "tuner0"])
def test_chief_worker_mode_is_refused_with_a_clear_error(tmp_path, monkeypatch, tuner_id):
    monkeypatch.setenv("KERASTUNER_TUNER_ID", tuner_id)
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    with pytest.raises(ValueError, match=f"chief/worker mode .*'{tuner_id}'"):
        MetaTuner(build_mlp, objective="val_accuracy", max_trials=2,
                  meta_storage=f"sqlite:///{tmp_path}/meta.db", directory=str(tmp_path))


def test_strategies_restrict_the_choice(tmp_path, digits):
    tuner = run(tmp_path, digits, f"sqlite:///{tmp_path}/m.db", "only-random",
                strategies=["random"], record=False)
    assert isinstance(tuner.oracle, RandomSearchOracle)
    # The settings a tracker logs on the search's run are the chosen strategy's.
    from metanas.tuners.tuner import strategy_settings

    assert tuner.strategy_settings == strategy_settings(
        RandomSearchOracle, {"seed": 1, **tuner.recommendation.settings}, tuner.oracle)
    assert "population_size" not in tuner.strategy_settings


def test_a_study_scored_by_the_final_regret_gets_no_production_record(tmp_path, digits):
    from metanas.meta.evaluate import BenchEvaluator
    from metanas.meta.tasks import meta_tasks

    storage = f"sqlite:///{tmp_path}/meta.db"
    MetaLearner(storage).meta_train(meta_tasks(["hpobench/car"]), BenchEvaluator(
        budget=6, objective="final"), n_trials=1, strategies=("random",))
    # Refused before the search (was: searched, then a warning that it was not recorded).
    with pytest.raises(ObjectiveError, match="holds scores of the meta-objective 'final'.*"
                                             "record=False"):
        run(tmp_path, digits, storage, "digits-final", max_trials=2)
    assert not (tmp_path / "digits-final").exists()
    with pytest.raises(StrategyError, match=r"ranges over the strategies \['random'\].*got "
                                            r"\['rl'\]"):
        run(tmp_path, digits, storage, "digits-final", max_trials=2, strategies=["rl"])
    tuner = run(tmp_path, digits, storage, "digits-final", max_trials=2, record=False)
    assert len(tuner.oracle.trials) == 2
    assert len(MetaLearner(storage).study.trials) == 1  # the meta-trial only
    assert "digits-final" in TransferStore(MetaLearner(storage)).records()  # its elite is kept
    # A result that waited for the storage while the study was claimed is dropped, not resent.
    (tmp_path / ".metanas-meta-pending").mkdir(exist_ok=True)
    (tmp_path / ".metanas-meta-pending" / "digits-final.json").write_text(json.dumps([{
        "task": {"name": "digits-final", "features": {}}, "strategy": "random", "params": {},
        "score": 0.2}]))
    with pytest.warns(UserWarning, match="a pending search result is dropped"):
        tuner._flush_pending()
    assert json.loads((tmp_path / ".metanas-meta-pending" / "digits-final.json").read_text()) == []
    assert len(MetaLearner(storage).study.trials) == 1


def test_a_lost_storage_keeps_the_result_until_it_is_back(tmp_path, digits):
    db = tmp_path / "meta.db"
    storage = f"sqlite:///{db}"
    MetaLearner(storage)
    x, y, x_val, y_val = digits
    tuner = MetaTuner(build_mlp, objective="val_accuracy", max_trials=3, seed=2,
                      meta_storage=storage, directory=str(tmp_path), project_name="p")
    shutil.move(db, tmp_path / "away.db")  # the storage goes away mid-search
    with pytest.warns(UserWarning, match="could not record the search"):
        tuner.search(x, y, validation_data=(x_val, y_val), epochs=1, verbose=0)
    pending = json.loads((tmp_path / ".metanas-meta-pending" / "p.json").read_text())
    assert len(pending) == 1 and pending[0]["task"]["name"] == "p"
    # Still down when the next search starts: the result stays pending.
    tuner.learner.record = lambda **kw: (_ for _ in ()).throw(RuntimeError("database is locked"))
    with pytest.warns(UserWarning, match="still unavailable .*database is locked.*1 search result"):
        tuner._flush_pending()
    assert json.loads((tmp_path / ".metanas-meta-pending" / "p.json").read_text()) == pending
    db.unlink(missing_ok=True)
    shutil.move(tmp_path / "away.db", db)  # it comes back
    # A new search in the same project (overwrite=True deletes the project
    # directory) sends it first.
    again = MetaTuner(build_mlp, objective="val_accuracy", max_trials=4, seed=2, record=False,
                      meta_storage=storage, directory=str(tmp_path), project_name="p",
                      overwrite=True)
    again.search(x, y, validation_data=(x_val, y_val), epochs=1, verbose=0)
    assert len(MetaLearner(storage).study.trials) == 1
    assert json.loads((tmp_path / ".metanas-meta-pending" / "p.json").read_text()) == []


def test_a_result_that_cannot_be_kept_either_is_one_clear_error(tmp_path, digits):
    db = tmp_path / "meta.db"
    storage = f"sqlite:///{db}"
    MetaLearner(storage)
    x, y, x_val, y_val = digits
    make = lambda: MetaTuner(build_mlp, objective="val_accuracy", max_trials=3, seed=2,  # noqa: E731
                             meta_storage=storage, directory=str(tmp_path), project_name="p")
    tuner = make()
    shutil.move(db, tmp_path / "away.db")  # the storage goes away mid-search...
    # ... and the pending folder cannot be written (a file where it should be).
    (tmp_path / ".metanas-meta-pending").write_text("not a folder")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(OSError, match=r"(?s)the search's trials are saved in .*p, but the "
                           r"search is not recorded in the meta storage .*nor could it be kept "
                           r".*p\.json .*run search\(\) again on this project \(overwrite=False\)"):
            tuner.search(x, y, validation_data=(x_val, y_val), epochs=1, verbose=0)
    # Was: "it is kept in .../p.json", then a bare FileExistsError: nothing was kept.
    assert not [w for w in caught if "it is kept" in str(w.message)]
    assert len(tuner.oracle.trials) == 3
    # Room again, the storage back: searching again records it, without new trials.
    (tmp_path / ".metanas-meta-pending").unlink()
    db.unlink(missing_ok=True)
    shutil.move(tmp_path / "away.db", db)
    again = make()
    again.search(x, y, validation_data=(x_val, y_val), epochs=1, verbose=0)
    assert len(again.oracle.trials) == 3
    assert len(MetaLearner(storage).study.trials) == 1


def test_search_score():
    class T:
        def __init__(self, score, status="COMPLETED"):
            self.score, self.status = score, status

    assert search_score([T(0.5), T(0.7), T(0.9)], maximize=True) == pytest.approx((0.4 + 0.2) / 3 / 0.2)
    assert search_score([T(0.5)], maximize=True) is None
    # Ties with the best at the median: half the spread to the worst is the unit.
    assert search_score([T(0.5), T(0.9), T(0.9)], maximize=True) == pytest.approx(0.4 / 3 / 0.2)
    # Most trials close to the best: bounded, not blown up by best - median.
    close = [T(0.5), T(0.96), T(0.965), T(0.97), T(0.97)]
    assert search_score(close, maximize=True) == pytest.approx((0.47 + 0.01 + 0.005) / 5 / 0.235)
    assert search_score([T(0.7), T(0.7)], maximize=True) is None  # nothing to learn from
    assert search_score([T(2.0), T(1.0), T(None, "FAILED")], maximize=False) == pytest.approx(1.0)


def test_search_score_of_a_racing_search_depends_on_its_scores_only():
    """Repeats of a configuration (a final race) count as evaluations of their
    own, so a race on pure noise can score no better than a search without one."""

    class T:
        def __init__(self, score, units=None):
            self.status, self.score = "COMPLETED", score
            if units is not None:
                self.hyperparameters = keras_tuner.HyperParameters()
                self.hyperparameters.values = {"units": units}

    rng = np.random.default_rng(0)
    noise = rng.normal(0.5, 0.1, size=40).tolist()  # every configuration equally good
    fresh = [T(score, units=i) for i, score in enumerate(noise)]
    raced = [T(score, units=i) for i, score in enumerate(noise[:30])] + [
        T(score, units=int(rng.integers(30))) for score in noise[30:]]
    bare = [T(score) for score in noise]
    assert search_score(raced, True) == search_score(fresh, True) == search_score(bare, True)
    assert 0 < search_score(raced, True) < 1


def test_a_production_search_is_recorded_into_a_meta_trained_study(tmp_path, digits):
    from metanas.meta import MetaTask

    storage = f"sqlite:///{tmp_path}/meta.db"
    tasks = [MetaTask(f"t{i}", {"log_samples": float(i)}) for i in range(2)]
    MetaLearner(storage, seed=0).meta_train(
        tasks, lambda task, strategy, settings, seed: 0.5, n_trials=2,
        strategies=("evolution", "random"))
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*(could not record|not recorded)")
        tuner = run(tmp_path, digits, storage, "digits-recorded", max_trials=2)
        tuner._report()  # reported again (search() again, nothing new): recorded once
    trials = MetaLearner(storage).study.trials
    assert len(trials) == 3 and trials[-1].user_attrs["source"] == "production"
    # A new search in the project (overwrite=True deletes the project directory,
    # and with it the search's id) is another search: recorded too.
    shutil.rmtree(tmp_path / "digits-recorded")
    tuner._report()
    assert len(MetaLearner(storage).study.trials) == 4
    assert not (tmp_path / ".metanas-meta-pending" / "digits-recorded.json").exists()


@pytest.mark.parametrize("kwargs, message", [
    (dict(record="no"), "record must be True or False, got 'no'"),  # it recorded: a true string
    (dict(task_name=""), "task_name must be a non-empty string or None, got ''"),
    (dict(task_name=42), "task_name must be a non-empty string or None, got 42"),
])
def test_bad_meta_tuner_settings_are_value_errors(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        MetaTuner(build_mlp, objective="val_accuracy", max_trials=2, directory=str(tmp_path),
                  meta_storage=f"sqlite:///{tmp_path}/meta.db", **kwargs)


def test_unknown_strategies_are_refused_before_any_search(tmp_path):
    with pytest.raises(ValueError, match=r"unknown strategies \['bogus'\]"):
        MetaTuner(build_mlp, objective="val_accuracy", max_trials=2, strategies=["bogus"],
                  meta_storage=f"sqlite:///{tmp_path}/m.db", directory=str(tmp_path))


def test_dataset_features_come_from_data_frames_and_dicts_too(tmp_path):
    import pandas as pd

    tuner = MetaTuner(build_mlp, objective="val_accuracy", max_trials=2,
                      meta_storage=f"sqlite:///{tmp_path}/m.db", directory=str(tmp_path))
    x = np.random.default_rng(0).normal(size=(40, 3))
    y = np.arange(40) % 2
    from_arrays = tuner.features((x, y), {})
    assert from_arrays["log_samples"] == pytest.approx(np.log10(40))
    assert tuner.features((pd.DataFrame(x), pd.Series(y)), {}) == from_arrays
    assert tuner.features((), {"x": {"features": x}, "y": y.tolist()}) == from_arrays
    with pytest.warns(UserWarning, match="dataset stream"):
        assert "log_samples" not in tuner.features((iter([x]),), {})


def test_task_type_sets_the_dataset_features_task(tmp_path):
    kwargs = dict(objective="val_loss", max_trials=2, meta_storage=f"sqlite:///{tmp_path}/m.db",
                  directory=str(tmp_path))
    x = np.random.default_rng(0).normal(size=(40, 3))
    counts = np.arange(40) % 4  # four integer values: classes unless told otherwise
    assert MetaTuner(build_mlp, **kwargs).features((x, counts), {})["task_type"] == "classification"
    told = MetaTuner(build_mlp, task_type="regression", **kwargs).features((x, counts), {})
    assert told["task_type"] == "regression" and told["log_classes"] == 0.0
    with pytest.raises(ValueError, match="task_type must be one of .* got 'counts'"):
        MetaTuner(build_mlp, task_type="counts", **kwargs)


def test_datasets_searched_without_a_project_name_are_recorded_as_different_tasks(tmp_path, digits):
    storage = f"sqlite:///{tmp_path}/meta.db"
    x, y, x_val, y_val = digits
    names = []
    for rows in (400, 200, 200):  # two datasets, the second searched twice
        keras.utils.set_random_seed(0)
        tuner = MetaTuner(build_mlp, objective="val_accuracy", max_trials=2, seed=1,
                          meta_storage=storage, directory=str(tmp_path), overwrite=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no meta-trial" the first time
            tuner.search(x[:rows], y[:rows], validation_data=(x_val, y_val), epochs=1,
                         batch_size=64, verbose=0)
        names.append(tuner.task_name)
    assert names[0] != names[1] == names[2]
    assert all(name.startswith("untitled_project-") for name in names)
    recorded = [list(t.user_attrs["per_task"]) for t in MetaLearner(storage).study.trials]
    assert recorded == [[names[0]], [names[1]], [names[1]]]


def test_a_directory_another_process_searches_in_is_refused_before_any_choice(tmp_path,
                                                                             digits):
    import fcntl
    import os

    from metanas.meta.tuner import CHOICE_FILE
    from metanas.tuners import storage as tuner_storage

    project = tmp_path / "busy"
    project.mkdir()
    other = os.open(project / tuner_storage.LOCK_FILE, os.O_RDWR | os.O_CREAT)
    fcntl.flock(other, fcntl.LOCK_EX)  # as another process's search holds it
    try:
        # It wrote its strategy choice, which the other search's resume reads, first.
        with pytest.raises(RuntimeError, match="another process is searching in"):
            run(tmp_path, digits, f"sqlite:///{tmp_path}/m.db", "busy", record=False)
        assert not (project / CHOICE_FILE).exists()
    finally:
        os.close(other)


@pytest.mark.parametrize("name, content, reason", [
    ("meta_choice.json", "garbage", "Expecting value"),
    ("meta_choice.json", '{"strategy": "bogus"}', "Recommendation.__init__.. missing"),
    ("meta_choice.json", '{"strategy": "bogus", "params": {}, "settings": {}, "source": "x"}',
     "strategy 'bogus' is not one of"),
    ("meta_search_id.json", "zz", "Expecting value"),
    ("meta_search_id.json", "{}", "it has no 'id'"),
])
def test_a_corrupt_meta_search_file_is_named_before_any_training(
        tmp_path, digits, name, content, reason):
    # Were a bare JSONDecodeError or TypeError; the search id's only after the
    # search, whose result was then neither recorded nor kept.
    storage = f"sqlite:///{tmp_path}/meta.db"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(tmp_path, digits, storage, "p", max_trials=1)
    path = tmp_path / "p" / name
    path.write_text(content)
    trials = sorted(p.name for p in (tmp_path / "p").glob("trial_*"))
    with pytest.raises(SavedStateError, match=rf"meta-search file {path} is corrupt \({reason}"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run(tmp_path, digits, storage, "p", max_trials=2, overwrite=False)
    assert path.read_text() == content
    assert sorted(p.name for p in (tmp_path / "p").glob("trial_*")) == trials  # none trained


def test_a_roulette_choice_saved_with_a_tournament_size_loads_without_it(tmp_path):
    # Saved before tournament_size was set for tournaments only: resuming it warned
    # of a tournament_size nobody gave.
    from metanas.meta.tuner import _load_choice

    path = tmp_path / "choice.json"
    path.write_text(json.dumps({"strategy": "evolution", "source": "defaults", "params": {},
                                "settings": {"selection": "roulette", "tournament_size": 3,
                                             "population_size": 10}}))
    assert _load_choice(str(path)).settings == {"selection": "roulette", "population_size": 10}
    path.write_text(json.dumps({"strategy": "evolution", "source": "defaults", "params": {},
                                "settings": {"selection": "tournament", "tournament_size": 3}}))
    assert _load_choice(str(path)).settings["tournament_size"] == 3
    for bad in (None, [], "roulette"):  # a corrupt file, not an AttributeError
        path.write_text(json.dumps({"strategy": "evolution", "source": "defaults",
                                    "params": {}, "settings": bad}))
        with pytest.raises(SavedStateError, match=r"meta-search file .* is corrupt \('settings'"):
            _load_choice(str(path))
