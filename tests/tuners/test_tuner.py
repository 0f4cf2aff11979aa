"""The KerasTuner tuners, with real (tiny) training on scikit-learn's digits."""

import keras
import numpy as np
import pytest

from metanas.demo import build_mlp, load_digits_split
from metanas.tuners import EvolutionOracle, EvolutionSearch, RandomSearch, RandomSearchOracle


@pytest.fixture(scope="module")
def digits():
    (x, y), (x_val, y_val) = load_digits_split(0)
    return x[:600], y[:600], x_val[:200], y_val[:200]


def search(tuner_class, digits, tmp_path, **kwargs):
    x, y, x_val, y_val = digits
    keras.utils.set_random_seed(0)
    tuner = tuner_class(
        build_mlp, objective="val_accuracy", max_trials=3, seed=2,
        directory=str(tmp_path), project_name="digits", **kwargs,
    )
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=1, batch_size=64, verbose=0)
    return tuner


@pytest.mark.parametrize(
    "tuner_class, oracle_class, settings",
    [
        (RandomSearch, RandomSearchOracle, {}),
        (EvolutionSearch, EvolutionOracle, {"population_size": 2, "selection": "roulette"}),
    ],
)
def test_tuner_trains_real_models_and_returns_the_best(
    tuner_class, oracle_class, settings, digits, tmp_path
):
    tuner = search(tuner_class, digits, tmp_path, executions_per_trial=1, **settings)
    assert isinstance(tuner.oracle, oracle_class)
    for name, value in settings.items():
        assert getattr(tuner.oracle, name) == value or name == "selection"
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 3 and all(t.status == "COMPLETED" for t in trials)
    best = tuner.get_best_models(1)[0]
    x_val, y_val = digits[2], digits[3]
    predictions = best.predict(x_val, verbose=0)
    assert predictions.shape == (200, 10)
    accuracy = float(np.mean(predictions.argmax(1) == y_val))
    assert accuracy == pytest.approx(tuner.oracle.get_best_trials(1)[0].score, abs=1e-6)


def test_fixed_hyperparameters_restrict_the_space(digits, tmp_path):
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    hp.Fixed("activation", "tanh")
    tuner = search(EvolutionSearch, digits, tmp_path, hyperparameters=hp, population_size=2)
    assert {t.hyperparameters.values["activation"] for t in tuner.oracle.trials.values()} == {"tanh"}


def test_unknown_keyword_is_rejected_by_keras_tuner(tmp_path):
    with pytest.raises(ValueError, match="Unrecognized arguments"):
        EvolutionSearch(build_mlp, objective="val_accuracy", directory=str(tmp_path), colour="red")


def test_an_oracle_given_to_a_tuner_that_makes_its_own_is_a_value_error(tmp_path):
    # Was keras-tuner's TypeError: "got multiple values for keyword argument 'oracle'".
    with pytest.raises(ValueError, match=r"EvolutionSearch makes its own EvolutionOracle .*"
                       r"got oracle=<.*EvolutionOracle.*: give the settings here, or the "
                       r"oracle to a keras_tuner.Tuner"):
        EvolutionSearch(build_mlp, objective="val_accuracy", directory=str(tmp_path),
                        oracle=EvolutionOracle(max_trials=20))


def test_a_finished_search_leaves_its_oracle_to_the_garbage_collector(tmp_path):
    # keras-tuner's `synchronized` keys module-level dicts by oracle, so every
    # oracle a process searched with stayed alive (with its trials) until exit.
    import gc
    import weakref

    import keras_tuner

    class Synthetic(EvolutionSearch):
        def run_trial(self, trial, *args, **kwargs):
            return {"score": float(trial.hyperparameters.get("x"))}

    def build(hp):
        hp.Int("x", 0, 9)

    tuner = Synthetic(hypermodel=build, objective=keras_tuner.Objective("score", "max"),
                      max_trials=5, seed=0, directory=str(tmp_path), project_name="gc")
    tuner.search(verbose=0)
    assert len(tuner.oracle.end_order) == 5
    alive = weakref.ref(tuner.oracle)
    del tuner
    gc.collect()
    assert alive() is None


@pytest.mark.parametrize("tuner_class", ["EvolutionSearch", "RLControllerSearch", "RandomSearch"])
def test_untuned_entries_do_not_let_a_configuration_repeat(tuner_class, tmp_path):
    # tune_new_entries=False: training adds 'a' at its default, which the space
    # does not tune; the 3 configurations of 'b' are each tried once, then it ends.
    import keras_tuner

    import metanas.tuners

    class Scored(keras_tuner.HyperModel):
        def build(self, hp):
            hp.Int("a", 0, 9)
            hp.Choice("b", ["x", "y", "z"])
            model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
            model.compile("sgd", "mse")
            return model

        def fit(self, hp, model, *args, **kwargs):
            return {"score": hp.get("a") + {"x": 0.0, "y": 0.5, "z": 0.25}[hp.get("b")]}

    space = keras_tuner.HyperParameters()
    space.Choice("b", ["x", "y", "z"])
    extra = {"num_initial_points": 2} if tuner_class == "RLControllerSearch" else {}
    tuner = getattr(metanas.tuners, tuner_class)(
        Scored(), objective=keras_tuner.Objective("score", "max"), max_trials=9, seed=1,
        hyperparameters=space, tune_new_entries=False, directory=str(tmp_path), **extra)
    tuner.search(verbose=0)
    tried = [t.hyperparameters.values for t in tuner.oracle.trials.values()]
    # Each once, then evolution's race (planned for 30% of max_trials) evaluates again.
    first = tried[:3]
    assert sorted(v["b"] for v in first) == ["x", "y", "z"]
    assert len(tried) == 3 + tuner.oracle.race_trials()
    assert all(v["a"] == 0 for v in tried)


def test_a_build_collects_garbage_once_and_keeps_keras_tuners_checks(tmp_path, monkeypatch):
    import gc

    import keras_tuner

    tuner = RandomSearch(build_mlp, objective="val_accuracy", max_trials=2, seed=0,
                         directory=str(tmp_path), tracking=False, max_model_size=5_000)
    collections = []
    collect = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *a: (collections.append(1), collect(*a))[1])
    hp = keras_tuner.HyperParameters()
    hp.Fixed("layers", 1)
    hp.Fixed("units_0", 16)
    assert isinstance(tuner._try_build(hp), keras.Model)
    assert len(collections) == 1  # Keras's clear_session; keras-tuner's own adds a second
    collections.clear()
    keras_tuner.Tuner._try_build(tuner, hp)
    assert len(collections) == 2
    hp.values["units_0"] = 128  # 64 * 128 + 128 + 128 * 10 + 10 > 5,000 parameters
    with pytest.raises(keras_tuner.errors.FailedTrialError, match=r"Oversized model: \d+ para"):
        tuner._try_build(hp)
    tuner.hypermodel.build = lambda hp: "not a model"
    with pytest.raises(keras_tuner.errors.FatalTypeError, match="not a model"):
        tuner._try_build(hp)


def test_the_best_are_completed_trials_only_and_none_asked_is_none(tmp_path):
    # Were: a failed trial among get_best_hyperparameters(k) when fewer than k had
    # completed (its docstring says "of completed trials"), and (0) a ValueError
    # where keras-tuner returns [].
    import keras_tuner

    class Half(RandomSearch):
        def run_trial(self, trial, *args, **kwargs):
            x = trial.hyperparameters.Int("x", 0, 9)
            if x % 2:
                raise keras_tuner.errors.FailedTrialError(f"odd x={x}")
            return {"score": float(x)}

    tuner = Half(objective=keras_tuner.Objective("score", "max"), max_trials=6, seed=1,
                 directory=str(tmp_path), tracking=False, max_consecutive_failed_trials=6)
    tuner.search(verbose=0)
    statuses = [t.status for t in tuner.oracle.trials.values()]
    completed = statuses.count("COMPLETED")
    assert 0 < completed < 6 and "FAILED" in statuses
    best = tuner.get_best_hyperparameters(6)
    assert len(best) == completed and all(hp.get("x") % 2 == 0 for hp in best)
    assert tuner.get_best_hyperparameters(0) == [] and tuner.get_best_models(0) == []
    with pytest.raises(ValueError, match="num_trials must be an int >= 0, got -1"):
        tuner.get_best_hyperparameters(-1)
