"""Failures injected into real trials, bad inputs and corrupt saved state."""

import keras
import keras_tuner
import numpy as np
import pytest

from metanas.tuners import EvolutionOracle, EvolutionSearch, RandomSearch
from metanas.tuners.base import TrialStatus

X = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
Y = (X[:, 0] > 0).astype("int32")


class FaultyModel(keras_tuner.HyperModel):
    """A tiny classifier whose `fault` hyperparameter breaks it in one of three ways."""

    def build(self, hp):
        fault = hp.Choice("fault", ["none", "build", "nan", "fit"])
        if fault == "build":
            raise RuntimeError("injected: the model cannot be built")
        inputs = keras.Input(shape=(4,))
        hidden = keras.layers.Dense(hp.Choice("units", [2, 4, 6, 8, 10, 12]), activation="relu")(
            inputs
        )
        outputs = keras.layers.Dense(2, activation="softmax")(hidden)
        model = keras.Model(inputs, outputs)
        learning_rate = 1e30 if fault == "nan" else 1e-2  # diverges to a NaN loss
        model.compile(keras.optimizers.SGD(learning_rate), "sparse_categorical_crossentropy")
        return model

    def fit(self, hp, model, *args, **kwargs):
        if hp.values["fault"] == "fit":
            raise RuntimeError("injected: training crashed")
        return model.fit(*args, **kwargs)


faulty_model = FaultyModel()


def build_faulty_tuner(tmp_path, **kwargs):
    return EvolutionSearch(
        faulty_model, objective="loss", max_trials=12, seed=3, population_size=3,
        directory=str(tmp_path), project_name="faults", tracking=False, **kwargs,
    )


def test_failed_trials_are_recorded_and_the_search_goes_on(tmp_path, capsys):
    initial = [{"fault": f, "units": 4} for f in ("build", "nan", "fit", "none")]
    tuner = build_faulty_tuner(tmp_path, initial_hps=initial, max_consecutive_failed_trials=20)
    tuner.search(X, Y, epochs=2, verbose=0)
    trials = tuner.oracle.trials
    assert len(trials) == 12
    by_fault = {}
    for trial in trials.values():
        by_fault.setdefault(trial.hyperparameters.values["fault"], set()).add(trial.status)
    assert by_fault["build"] == {"FAILED"} and by_fault["fit"] == {"FAILED"}
    assert by_fault["nan"] == {"FAILED"} and by_fault["none"] == {"COMPLETED"}
    failed = [t for t in trials.values() if t.status == "FAILED"]
    messages = " ".join(t.message or "" for t in failed)
    assert "injected: the model cannot be built" in messages
    assert "injected: training crashed" in messages
    err = capsys.readouterr().err  # each failure's traceback, as keras-tuner prints it
    raised = [t for t in failed if "Traceback" in (t.message or "")]  # not the NaN ones
    assert raised and err.count("Traceback") == len(raised)
    assert "injected: training crashed" in err
    best = tuner.oracle.get_best_trials(1)[0]
    assert best.status == "COMPLETED" and best.hyperparameters.values["fault"] == "none"


def test_max_consecutive_failed_trials_ends_with_a_clear_error(tmp_path):
    hp = keras_tuner.HyperParameters()
    hp.Fixed("fault", "fit")
    tuner = build_faulty_tuner(tmp_path, hyperparameters=hp, max_consecutive_failed_trials=2)
    with pytest.raises(RuntimeError, match="consecutive failures exceeded the limit of 2"):
        tuner.search(X, Y, epochs=1, verbose=0)
    assert [t.status for t in tuner.oracle.trials.values()] == ["FAILED", "FAILED"]


@pytest.mark.parametrize(
    "fit_args, fit_kwargs, message",
    [
        ((np.where(X > 2, np.nan, X), Y), {}, r"x holds \d+ NaN or infinite value"),
        ((X, Y[:10]), {}, "x has 64 samples but y has 10"),
        ((X, Y), {"validation_data": (np.full_like(X, np.inf), Y)},
         r"validation_data\[0\] holds 256"),
        # Keras takes it and scores every trial on a nonsense split.
        ((X, Y), {"validation_split": 1.5},
         r"validation_split must be a number in \[0, 1\), got 1.5"),
        ((X, Y), {"epochs": 0}, "epochs must be an int >= 1, got 0"),
        ((X, Y), {"epochs": "2"}, "epochs must be an int >= 1, got '2'"),
    ],
)
def test_bad_arrays_are_rejected_before_the_first_trial(fit_args, fit_kwargs, message, tmp_path):
    tuner = RandomSearch(faulty_model, objective="loss", directory=str(tmp_path))
    fit_kwargs = {"epochs": 1, **fit_kwargs}
    with pytest.raises(ValueError, match=message):
        tuner.search(*fit_args, verbose=0, **fit_kwargs)
    assert tuner.oracle.trials == {}


def test_nan_targets_are_a_warning_and_integers_are_not_scanned():
    from metanas.tuners.tuner import _count_non_finite, validate_fit_data

    # NaN labels are a masked loss's missing targets (multi-task data): keras-tuner
    # trains on them, so the check warns instead of refusing.
    y = Y.astype("float32")
    y[:5] = np.nan
    with pytest.warns(UserWarning, match=r"y holds 5 NaN or infinite value\(s\): unless the "
                                         "loss masks them"):
        validate_fit_data((X, y), {"validation_data": (X, y)})
    # Counted a slice at a time: the same count as one pass, any slice size.
    big = np.ones((100, 7), "float64")
    big[[3, 50, 99], [0, 6, 2]] = [np.nan, np.inf, -np.inf]
    assert [_count_non_finite(big, chunk_bytes=b) for b in (8, 64, 1000, 1 << 24)] == [3] * 4
    assert _count_non_finite(big[::2]) == 1  # a strided view: row 50 only
    assert _count_non_finite(big.T, chunk_bytes=64) == 3  # not contiguous: no copy needed
    assert _count_non_finite(np.array(np.nan)) == 1
    # Integer data holds no NaN: not scanned (an image set is often uint8).
    assert _count_non_finite(np.zeros((4, 8, 8), "uint8")) == 0


def test_data_that_fits_no_model_is_a_warning_before_the_first_trial(tmp_path):
    def four_inputs(hp):
        return faulty_model.build(hp)  # its own fit (not keras-tuner's) would skip the check

    tuner = RandomSearch(four_inputs, objective="loss", directory=str(tmp_path),
                         max_consecutive_failed_trials=1, tracking=False)
    expected = (r"default values fails on the first two rows of the data \(ValueError: Input 0 "
                r".* incompatible with the layer: expected shape=\(None, 4\), found shape="
                r"\(None, 5\)\)")
    with pytest.warns(UserWarning, match=expected):
        with pytest.raises(RuntimeError, match="consecutive failures"):
            tuner.search(np.zeros((64, 5), "float32"), Y, epochs=1, verbose=0)


@pytest.mark.parametrize("overwrite", ["no", "False", 0, None])
def test_an_overwrite_that_is_not_a_bool_deletes_nothing(tmp_path, overwrite):
    # keras-tuner deletes the project on any true value: "no" would lose every trial.
    kept = tmp_path / "p" / "trial_0" / "trial.json"
    kept.parent.mkdir(parents=True)
    kept.write_text("{}")
    with pytest.raises(ValueError, match=f"overwrite must be True or False, got {overwrite!r}"):
        RandomSearch(faulty_model, objective="loss", directory=str(tmp_path), project_name="p",
                     overwrite=overwrite, tracking=False)
    assert kept.read_text() == "{}"


@pytest.mark.parametrize("directory, project", [("f", "p"), ("f/sub", "p"), (".", "f")])
def test_a_search_folder_under_a_file_is_a_value_error(tmp_path, monkeypatch, directory, project):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f").write_text("not a folder")
    with pytest.raises(ValueError, match=f"the search's folder .* cannot be created: "
                                         f"'{tmp_path / 'f'}' is a file"):
        RandomSearch(faulty_model, objective="loss", directory=directory, project_name=project,
                     tracking=False)


def test_corrupt_saved_state_is_reported_and_left_untouched(tmp_path):
    tuner = build_faulty_tuner(tmp_path, max_consecutive_failed_trials=20)
    tuner.search(X, Y, epochs=1, verbose=0)
    state_file = tmp_path / "faults" / "oracle.json"
    state_file.write_text('{"ongoing_trials": {}, "hyperpara')
    trial_files = sorted(p.read_text() for p in (tmp_path / "faults").glob("trial_*/trial.json"))
    with pytest.raises(ValueError, match="oracle.json is corrupt.*left as it is"):
        build_faulty_tuner(tmp_path, overwrite=False)
    assert state_file.read_text() == '{"ongoing_trials": {}, "hyperpara'
    after = sorted(p.read_text() for p in (tmp_path / "faults").glob("trial_*/trial.json"))
    assert after == trial_files and len(after) == 12


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"heartbeat_timeout": 0}, "heartbeat_timeout must be a number of seconds > 0 and at "
                                   "most 1e\\+09, or None never to reclaim a trial; got 0"),
        # Was accepted, and killed every worker's heartbeat thread (a review's finding).
        ({"heartbeat_timeout": float("inf")}, "heartbeat_timeout .* got inf"),
        ({"heartbeat_timeout": float("nan")}, "heartbeat_timeout .* got nan"),
        ({"max_lost_retries": -1}, "max_lost_retries must be an int >= 0, got -1"),
        ({"seed": -5}, "seed must be an int >= 0, got -5"),
        ({"max_consecutive_failed_trials": 0}, "max_consecutive_failed_trials must be an int >= 1, got 0"),
        ({"max_consecutive_failed_trials": "3"}, "max_consecutive_failed_trials must be an int >= 1, got '3'"),
        ({"max_retries_per_trial": "1"}, "max_retries_per_trial must be an int >= 0, got '1'"),
        ({"hyperparameters": {"a": 1}}, r"hyperparameters must be a keras_tuner.HyperParameters or None, got \{'a': 1\}"),
        ({"objective": keras_tuner.Objective("score", "up")}, "direction 'up'; it must be 'min' or 'max'"),
        ({"objective": 3}, "objective must be a metric name, a keras_tuner.Objective, .* got 3"),
        ({"objective": []}, "objective must name at least one metric, got an empty list"),
        ({"objective": ["val_loss", keras_tuner.Objective("val_loss", "min")]},
         r"objective must name each metric once, got \['val_loss'\] twice or more"),
        ({"initial_hps": 5}, "initial_hps must be a list of .* got 5"),
        ({"initial_hps": ""}, "initial_hps must be a list of .* got ''"),
        ({"allow_new_entries": "no"}, "allow_new_entries must be True or False, got 'no'"),
        ({"tune_new_entries": float("nan")}, "tune_new_entries must be True or False, got nan"),
    ],
)
def test_bad_oracle_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EvolutionOracle(**kwargs)


def test_an_oracle_error_other_than_too_many_failures_is_raised_untouched(tmp_path):
    from tests.tuners.conformance import finish, make

    oracle = make(lambda **kw: EvolutionOracle(population_size=4, **kw), tmp_path,
                  max_consecutive_failed_trials=2)
    trial = oracle.create_trial("tuner0")
    oracle.score_trial = lambda t: (_ for _ in ()).throw(RuntimeError("a bug in scoring"))
    with pytest.raises(RuntimeError, match="a bug in scoring"):
        finish(oracle, trial, 1.0)
    assert oracle.failure is None and oracle.end_order == [] and oracle._learned == 0
    del oracle.score_trial
    # keras-tuner's old call form, end_trial(trial_id, status), still works.
    oracle.update_trial(trial.trial_id, {"score": 1.0})
    oracle.end_trial(trial.trial_id, "COMPLETED")
    assert oracle.end_order == [trial.trial_id] and oracle.trials[trial.trial_id].score == 1.0
    # Too many consecutive failures in one process: an error, not a stopped oracle.
    finish(oracle, oracle.create_trial("tuner0"), None, fail=True)
    with pytest.raises(RuntimeError, match="consecutive failures"):
        finish(oracle, oracle.create_trial("tuner0"), None, fail=True)
    assert oracle.failure is None
    assert oracle.create_trial("tuner0").status == "RUNNING"


def test_the_old_end_trial_signature_keeps_the_values_the_trial_ran_with(tmp_path):
    from metanas.tuners import RandomSearchOracle
    from tests.tuners.conformance import make

    space = keras_tuner.HyperParameters()
    space.Choice("a", [1, 2, 3])
    oracle = make(lambda **kw: RandomSearchOracle(**kw), tmp_path, space=space, max_trials=6)
    ran = []
    while (trial := oracle.create_trial("tuner0")).status == "RUNNING":
        ran.append(trial.hyperparameters.values["a"])
        oracle.update_trial(trial.trial_id, {"score": float(ran[-1])})
        oracle.end_trial(trial.trial_id, "COMPLETED")  # end_trial(trial_id, status)
    # Each value once, then the exhausted space stops the search; the defaults
    # (a=1) were recorded for every trial before, which re-proposed the others.
    assert sorted(ran) == [1, 2, 3]
    assert sorted(t.hyperparameters.values["a"] for t in oracle.trials.values()) == [1, 2, 3]
    best = oracle.get_best_trials(1)[0]
    assert (best.hyperparameters.values["a"], best.score) == (3, 3.0)


@pytest.mark.parametrize("strategy", ["evolution", "rl"])
def test_an_infinite_score_is_a_failed_trial_not_the_best(tmp_path, strategy):
    import json
    import math

    from metanas.tuners import RLControllerOracle
    from tests.tuners.conformance import MIN, finish, make, nas_score

    factory = {
        "evolution": lambda **kw: EvolutionOracle(population_size=4, **kw),
        "rl": lambda **kw: RLControllerOracle(num_initial_points=2, units=4, **kw),
    }[strategy]
    oracle = make(factory, tmp_path, objective=MIN, max_trials=12)
    for i in range(8):
        trial = oracle.create_trial("tuner0")
        # A diverged run (a Gaussian likelihood whose variance collapsed).
        finish(oracle, trial, -math.inf if i == 3 else -nas_score(trial.hyperparameters.values))
    diverged = oracle.trials[oracle.end_order[3]]
    assert diverged.status == "FAILED" and "was -inf" in diverged.message
    assert oracle.get_best_trials(1)[0].trial_id != diverged.trial_id
    state = json.dumps(oracle.get_state())
    assert "NaN" not in state and "Infinity" not in state
    if strategy == "rl":  # the reward statistics stay finite, so it goes on learning
        assert all(math.isfinite(v) for v in oracle._reward_stats)


def _factory(strategy):
    from metanas.tuners import RandomSearchOracle, RLControllerOracle

    return {
        "evolution": lambda **kw: EvolutionOracle(population_size=4, **kw),
        "random": lambda **kw: RandomSearchOracle(**kw),
        "rl": lambda **kw: RLControllerOracle(num_initial_points=2, units=4, **kw),
    }[strategy]


@pytest.mark.parametrize("strategy", ["evolution", "rl"])
def test_a_trial_whose_end_reached_its_file_but_not_the_oracle_file_is_not_run_again(
        tmp_path, strategy):
    from tests.tuners.conformance import drive, finish, make, nas_score

    oracle = make(_factory(strategy), tmp_path, max_trials=6)
    drive(oracle, trials=3)
    trial = oracle.create_trial("tuner0")
    score = nas_score(trial.hyperparameters.values)

    def disk_full():  # keras-tuner wrote trial.json, then the oracle's save failed
        raise OSError(28, "No space left on device")

    oracle.save = disk_full
    with pytest.raises(OSError):
        finish(oracle, trial, score)
    resumed = make(_factory(strategy), tmp_path, max_trials=6)
    resumed.reload()
    assert resumed.end_order[-1] == trial.trial_id and trial.trial_id not in resumed._retry_queue
    assert resumed._learned == 4  # the strategy learnt from it on reload
    ran = drive(resumed)
    assert len(ran) == 2 and len(resumed.trials) == 6  # it was not run again
    assert resumed.trials[trial.trial_id].score == score


def test_a_kill_before_the_tuners_first_save_resumes_from_the_oracles_file(tmp_path):
    # keras-tuner resumes from tuner0.json, first written after trial 0 ended and
    # the oracle was saved: a kill between the two started afresh over trial 0.
    hp = keras_tuner.HyperParameters()
    hp.Fixed("fault", "none")

    def tuner(max_trials):
        return EvolutionSearch(faulty_model, objective="loss", max_trials=max_trials, seed=3,
                               population_size=2, hyperparameters=hp, racing_fraction=0,
                               directory=str(tmp_path), project_name="faults", tracking=False)

    tuner(1).search(X, Y, epochs=1, verbose=0)
    project = tmp_path / "faults"
    (project / "tuner0.json").unlink()  # the state a kill at that moment leaves
    kept = (project / "trial_0" / "trial.json").read_text()
    resumed = tuner(3)
    assert list(resumed.oracle.trials) == ["0"] and resumed.oracle.end_order == ["0"]
    resumed.search(X, Y, epochs=1, verbose=0)
    assert (project / "trial_0" / "trial.json").read_text() == kept  # not run again
    assert sorted(resumed.oracle.trials) == ["0", "1", "2"]
    assert (project / "tuner0.json").exists()


@pytest.mark.parametrize("chief", [True, False])
def test_a_restarted_chief_leaves_running_trials_to_their_workers(tmp_path, monkeypatch, chief):
    import time

    from tests.tuners.conformance import finish, make

    if chief:  # keras-tuner's distributed mode, this process the chief
        monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
        monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
        monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")

    def oracle_():
        return make(lambda **kw: EvolutionOracle(heartbeat_timeout=0.5, **kw), tmp_path,
                    max_trials=6)

    oracle = oracle_()
    alive, gone = oracle.create_trial("tuner1"), oracle.create_trial("tuner2")
    oracle.save()
    resumed = oracle_()  # the chief restarted; its workers may still be training
    resumed.reload()
    if not chief:  # one process: its running trials died with it, and run again at once
        assert sorted(resumed._retry_queue) == [alive.trial_id, gone.trial_id]
        return
    # They were handed out again at once: each trained twice.
    assert resumed._retry_queue == []
    assert {t.trial_id for t in resumed.ongoing_trials.values()} == {alive.trial_id, gone.trial_id}
    finish(resumed, resumed.trials[alive.trial_id], 1.0)  # its worker reports
    assert resumed.trials[alive.trial_id].status == TrialStatus.COMPLETED
    time.sleep(0.6)  # the other's worker is silent past heartbeat_timeout
    again = resumed.create_trial("tuner3")
    assert again.trial_id == gone.trial_id and again.status == TrialStatus.RUNNING


@pytest.mark.parametrize("strategy", ["evolution", "random"])
def test_a_search_whose_trial_files_are_gone_is_refused_on_reload(tmp_path, strategy):
    import shutil

    from tests.tuners.conformance import drive, make

    oracle = make(_factory(strategy), tmp_path, max_trials=8)
    drive(oracle, trials=5)
    shutil.rmtree(tmp_path / "p" / "trial_0")  # someone cleaned the directory up
    resumed = make(_factory(strategy), tmp_path, max_trials=8)
    # It looped for ever re-creating trial 4 (random), or named a bad population.
    with pytest.raises(ValueError, match=r"names 1 trial\(s\) whose file is gone \(.*"
                                         r"trial_0/trial\.json\).*overwrite=True"):
        resumed.reload()


def test_search_called_again_after_a_failed_save_runs_a_new_trial_and_learns_both(tmp_path):
    from tests.tuners.conformance import finish, make, nas_score

    oracle = make(_factory("evolution"), tmp_path, max_trials=6)
    learnt = []
    on_trial_result = oracle.on_trial_result
    oracle.on_trial_result = lambda trial: (learnt.append(trial.trial_id),
                                            on_trial_result(trial))
    trial = oracle.create_trial("tuner0")

    def disk_full():
        raise OSError(28, "No space left on device")

    oracle.save = disk_full
    with pytest.raises(OSError):
        finish(oracle, trial, nas_score(trial.hyperparameters.values))
    del oracle.save  # space freed; the notebook calls search() again
    # The ended trial was still listed as the worker's: it ran again, and its
    # second result was dropped (a COMPLETED trial with no score in memory).
    second = oracle.create_trial("tuner0")
    assert second.trial_id != trial.trial_id and second.status == "RUNNING"
    finish(oracle, second, nas_score(second.hyperparameters.values))
    assert learnt == [trial.trial_id, second.trial_id] and oracle._learned == 2
    assert oracle.trials[trial.trial_id].score == nas_score(trial.hyperparameters.values)


class DiskFillsOnce(FaultyModel):
    """Training that meets a full disk on its third fit (a checkpoint write)."""

    fits = 0

    def fit(self, hp, model, *args, **kwargs):
        DiskFillsOnce.fits += 1
        if DiskFillsOnce.fits == 3:
            raise OSError(28, "No space left on device", "trial_2/checkpoint.weights.h5")
        return model.fit(*args, **kwargs)


def test_a_full_disk_stops_the_search_and_its_trial_runs_again(tmp_path):
    from metanas.tuners import DiskFullError

    hp = keras_tuner.HyperParameters()
    hp.Fixed("fault", "none")
    hp.Choice("units", [2, 4, 6, 8, 10, 12])
    tuner = EvolutionSearch(DiskFillsOnce(), objective="loss", max_trials=4, seed=3,
                            population_size=3, hyperparameters=hp, directory=str(tmp_path),
                            project_name="disk", tracking=False)
    # It failed the trial (for good) and went on to fail the next ones the same way.
    with pytest.raises(DiskFullError, match=r"trial 2 could not write to disk \(\[Errno 28\] "
                                            r"No space left on device.*overwrite=False"):
        tuner.search(X, Y, epochs=1, verbose=0)
    trials = tuner.oracle.trials
    assert [trials[t].status for t in sorted(trials)] == ["COMPLETED", "COMPLETED", "RUNNING"]
    values = dict(trials["2"].hyperparameters.values)
    tuner.search(X, Y, epochs=1, verbose=0)  # space freed: the notebook searches again
    assert [trials[t].status for t in sorted(trials)] == ["COMPLETED"] * 4
    assert trials["2"].hyperparameters.values == values and trials["2"].score is not None


def test_only_disk_errors_count_as_a_full_disk():
    from metanas.tuners.storage import disk_failure

    assert disk_failure(OSError(28, "No space left on device")) is not None
    assert disk_failure(OSError(30, "Read-only file system")) is not None
    try:
        try:
            raise OSError(122, "Disk quota exceeded")
        except OSError as error:
            raise RuntimeError("saving the checkpoint failed") from error
    except RuntimeError as wrapped:
        assert disk_failure(wrapped).errno == 122
    # TensorFlow's file errors are not OSErrors; its messages say it.
    assert disk_failure(RuntimeError("/x/build_config.json; No space left on device"))
    assert disk_failure(RuntimeError("OOM when allocating tensor with shape[1000000]")) is None
    assert disk_failure(OSError(2, "No such file or directory")) is None


def test_a_search_resumed_with_another_objective_is_refused(tmp_path):
    # Was accepted: trials scored by val_accuracy were ranked as val_loss, and
    # the best trial was the one with the lowest accuracy.
    from metanas.tuners.objectives import ConstrainedObjective
    from tests.tuners.conformance import drive, make

    oracle = make(_factory("evolution"), tmp_path, max_trials=8)
    drive(oracle, trials=3)
    saved = (tmp_path / "p" / "oracle.json").read_text()
    for other in (keras_tuner.Objective("score", "min"), keras_tuner.Objective("loss", "max")):
        resumed = make(_factory("evolution"), tmp_path, max_trials=8, objective=other)
        with pytest.raises(ValueError, match=r"oracle\.json was scored by objective 'score' "
                                             r"\(max\); this tuner's is .*overwrite=True"):
            resumed.reload()
    assert (tmp_path / "p" / "oracle.json").read_text() == saved  # left as it was
    same = make(_factory("evolution"), tmp_path, max_trials=8)
    same.reload()
    assert len(same.trials) == 3
    # A budget's target decides its scores too.
    budget = ConstrainedObjective("score", cost="cost/params", target=100, hard=True,
                                  direction="max")
    oracle = make(_factory("random"), tmp_path, name="q", objective=budget)
    oracle.save()
    wider = ConstrainedObjective("score", cost="cost/params", target=200, hard=True,
                                 direction="max")
    with pytest.raises(ValueError, match=r"target=100\.0.*target=200\.0"):
        make(_factory("random"), tmp_path, name="q", objective=wider).reload()
    make(_factory("random"), tmp_path, name="q", objective=budget).reload()


@pytest.mark.parametrize("name, content, what, reason", [
    ("oracle.json", "[]", "oracle state", "a JSON list, where an object was expected"),
    ("oracle.json", "{}", "oracle state", "it has no 'ongoing_trials'"),
    ("trial_*/trial.json", "xx", "trial", "Expecting value"),
    ("trial_*/trial.json", '{"hyperparameters": {}}', "trial", "it has no 'trial_id'"),
    ("tuner0.json", "xx", "tuner state", "Expecting value"),
])
def test_a_corrupt_file_of_a_saved_search_is_named_and_left_as_it_is(
        tmp_path, name, content, what, reason):
    # Were a TypeError, keras-tuner's RuntimeError, a bare JSONDecodeError, and
    # a message that blamed oracle.json for a corrupt trial file.
    from metanas.tuners import SavedStateError

    tuner = build_faulty_tuner(tmp_path, max_consecutive_failed_trials=20,
                               initial_hps=[{"fault": "none", "units": 2}])
    tuner.search(X, Y, epochs=1, verbose=0)
    path = sorted((tmp_path / "faults").glob(name))[0]
    path.write_text(content)
    files = {p: p.read_bytes() for p in (tmp_path / "faults").rglob("*") if p.is_file()}
    with pytest.raises(SavedStateError) as caught:
        build_faulty_tuner(tmp_path, overwrite=False)
    assert str(caught.value).startswith(f"The saved {what} {path} is corrupt ({reason}")
    assert {p: p.read_bytes() for p in (tmp_path / "faults").rglob("*") if p.is_file()} == files


def test_a_search_resumed_with_another_strategy_is_refused_as_such(tmp_path):
    # Was "oracle.json is corrupt (it has no 'rl')": the file is fine.
    from tests.tuners.conformance import drive, make

    oracle = make(_factory("evolution"), tmp_path, max_trials=8)
    drive(oracle, trials=2)
    with pytest.raises(ValueError, match=r"oracle\.json was run by EvolutionOracle; this "
                                         r"tuner's oracle is RLControllerOracle\..*overwrite=True"):
        make(_factory("rl"), tmp_path, max_trials=8).reload()


def test_an_objective_of_a_users_class_is_saved_and_resumed(tmp_path):
    # Its own attributes (numpy numbers, NaN, objects) are not part of the saved state.
    from tests.tuners.conformance import drive, make

    class Weighted(keras_tuner.Objective):
        def __init__(self):
            super().__init__("score", "max")
            self.weights = (np.float32(0.5), float("nan"))
            self.parts = [object()]

    oracle = make(_factory("random"), tmp_path, max_trials=8, objective=Weighted())
    drive(oracle, trials=2)  # saves after each trial
    resumed = make(_factory("random"), tmp_path, max_trials=8, objective=Weighted())
    resumed.reload()
    assert len(resumed.trials) == 2


@pytest.mark.parametrize("kwargs, message", [
    ({"directory": 3}, r"directory must be a path \(a str or os.PathLike\) or None, got 3"),
    ({"project_name": 3}, "project_name must be a non-empty string or None, got 3"),
    ({"project_name": " "}, "project_name must be a non-empty string or None, got ' '"),
])
def test_a_search_folder_that_is_no_path_is_refused(tmp_path, monkeypatch, kwargs, message):
    # Were a folder named "3" and a TypeError from os.path.join.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        EvolutionSearch(faulty_model, objective="loss", max_trials=2, tracking=False, **kwargs)
    assert list(tmp_path.iterdir()) == []
