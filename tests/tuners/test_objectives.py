"""Metric objectives, cost measures, constrained objectives and Pareto fronts."""

import itertools
import re

import keras
import keras_tuner
import numpy as np
import pytest

from metanas.tuners import EvolutionOracle, EvolutionSearch, NSGA2Selection, RandomSearch
from metanas.tuners.objectives import (
    ConstrainedObjective,
    best_value,
    crowding_distance,
    hypervolume_2d,
    infer_direction,
    measure_costs,
    non_dominated_ranks,
    pareto_front,
)
from tests.tuners.conformance import make

RNG = np.random.default_rng(0)
X = RNG.normal(size=(120, 6)).astype("float32")
Y = (X[:, 0] + X[:, 1] > 0).astype("int32")


def dense_model(hp):
    model = keras.Sequential([keras.Input(shape=(6,))])
    for i in range(hp.Int("layers", 0, 2)):
        model.add(keras.layers.Dense(hp.Choice(f"units_{i}", [4, 64]), activation="relu"))
    model.add(keras.layers.Dense(2, activation="softmax"))
    model.compile(
        "adam", "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def test_measure_costs_counts_params_flops_size_and_latency():
    inputs = keras.Input(shape=(8, 8, 1))
    conv = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 40 params at 64 positions
    outputs = keras.layers.Dense(10)(keras.layers.Flatten()(conv))  # 2570 params
    costs = measure_costs(keras.Model(inputs, outputs), repeats=5)
    assert costs["cost/params"] == 40 + 2570
    assert costs["cost/flops"] == 2 * 40 * 64 + 2 * 2570
    assert costs["cost/size_bytes"] == 4 * 2610  # float32 weights, no file format overhead
    assert costs["cost/latency_ms"] > 0
    # Twelve tiny layers are smaller than one wide one (a file's per-layer
    # overhead ordered them the other way round).
    deep = keras.Sequential([keras.Input((2,))] + [keras.layers.Dense(2) for _ in range(12)])
    wide = keras.Sequential([keras.Input((64,)), keras.layers.Dense(100)])
    sizes = [measure_costs(m, repeats=1)["cost/size_bytes"] for m in (deep, wide)]
    assert sizes == [4.0 * 72, 4.0 * 6500]


@pytest.mark.parametrize(
    "name, direction",
    [("val_f1_score", "max"), ("val_auc", "max"), ("recall", "max"), ("val_precision", "max"),
     ("val_loss", "min"), ("val_mean_absolute_error", "min"), ("cost/latency_ms", "min"),
     # keras-tuner said "min" for these (a review's finding): the worst models won.
     ("val_cosine_similarity", "max"), ("pearson_correlation", "max"),
     ("val_concordance_correlation", "max")],
)
def test_directions_are_inferred_from_metric_names(name, direction):
    assert infer_direction(name) == direction
    assert EvolutionOracle(objective=name).objective.direction == direction


def test_unknown_metric_direction_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot infer whether the objective 'zebra'"):
        EvolutionOracle(objective="zebra")


def test_soft_and_hard_constrained_values():
    soft = ConstrainedObjective("val_accuracy", cost="cost/params", target=1000, weight=-0.5)
    assert soft.direction == "max"
    assert soft.get_value({"val_accuracy": 0.8, "cost/params": 4000}) == pytest.approx(0.4)
    assert soft.get_value({"val_accuracy": 0.8, "cost/params": 250}) == pytest.approx(1.6)
    loss = ConstrainedObjective("val_loss", cost="cost/params", target=1000, weight=-0.5)
    assert loss.get_value({"val_loss": 0.8, "cost/params": 4000}) == pytest.approx(1.6)
    hard = ConstrainedObjective("val_accuracy", cost="cost/params", target=1000, hard=True)
    feasible = hard.get_value({"val_accuracy": 0.1, "cost/params": 1000})
    infeasible = hard.get_value({"val_accuracy": 0.99, "cost/params": 1001})
    worse = hard.get_value({"val_accuracy": 0.99, "cost/params": 3000})
    assert feasible == 0.1 and infeasible < feasible and worse < infeasible
    # A soft trade-off is undefined at a cost of 0 (was ZeroDivisionError; with a loss, a
    # silent score of 0.0, the best possible) and meaningless for a negative metric.
    for logs, bad in (({"val_accuracy": 0.8, "cost/params": 0}, "cost 'cost/params' is 0.0"),
                      ({"val_accuracy": 0.8, "cost/params": -1}, "cost 'cost/params' is -1.0"),
                      ({"val_accuracy": -0.1, "cost/params": 9}, "metric 'val_accuracy' is -0.1")):
        with pytest.raises(ValueError, match=f"{bad}; it must be "):
            soft.get_value(logs)
    with pytest.raises(ValueError, match="cost 'cost/params' is 0.0; it must be > 0"):
        loss.get_value({"val_loss": 0.8, "cost/params": 0})
    assert hard.get_value({"val_accuracy": 0.8, "cost/params": 0}) == 0.8  # within budget
    # numpy numbers are numbers (a target read from an array).
    assert ConstrainedObjective("val_accuracy", target=np.int64(20), weight=np.float32(-1)).target == 20
    for target in (0, float("inf")):  # inf: every soft score divided by zero
        with pytest.raises(ValueError, match=f"target must be a finite number > 0, got {target}"):
            ConstrainedObjective("val_accuracy", target=target)
    for kwargs, message in ((dict(hard="no"), "hard must be True or False, got 'no'"),
                            (dict(weight=float("nan")), "weight must be a finite number"),
                            (dict(cost=None), "cost must be a metric name .* got None"),
                            (dict(cost=" "), "cost must be a metric name .* got ' '")):
        with pytest.raises(ValueError, match=message):
            ConstrainedObjective("val_accuracy", target=10, **kwargs)


def search(tuner_class, tmp_path, objective, max_trials=6, **kwargs):
    keras.utils.set_random_seed(1)
    tuner = tuner_class(
        dense_model, objective=objective, max_trials=max_trials, seed=4,
        directory=str(tmp_path), project_name="p", **kwargs,
    )
    tuner.search(X, Y, validation_split=0.25, epochs=2, verbose=0)
    return tuner


def test_every_trial_records_its_costs(tmp_path):
    tuner = search(RandomSearch, tmp_path, "val_accuracy", max_trials=3)
    for trial in tuner.oracle.trials.values():
        model = tuner.load_model(trial)
        assert trial.metrics.get_last_value("cost/params") == model.count_params()
        for name in ("cost/flops", "cost/size_bytes", "cost/latency_ms"):
            assert trial.metrics.get_last_value(name) > 0


def test_a_cost_objectives_checkpoint_is_its_best_epoch_and_callbacks_see_the_costs(tmp_path):
    # Was: the costs joined the logs after keras-tuner's best-epoch checkpoint had
    # seen them, so it found no objective value and kept the last epoch's weights.
    def jumpy(hp):  # a learning rate this high makes the last epoch seldom the best
        model = dense_model(hp)
        model.compile(keras.optimizers.SGD(learning_rate=3.0),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    seen, runs = [], []

    class Spy(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            runs.append([])

        def on_epoch_end(self, epoch, logs=None):
            seen.append("cost/params" in logs)
            runs[-1].append(logs["val_accuracy"])

    keras.utils.set_random_seed(1)
    objective = ConstrainedObjective("val_accuracy", cost="cost/params", target=100, weight=-0.1)
    tuner = RandomSearch(jumpy, objective=objective, max_trials=4, seed=4,
                         directory=str(tmp_path), project_name="p")
    tuner.search(X, Y, validation_split=0.25, epochs=6, verbose=0, callbacks=[Spy()])
    runs = runs[-4:]  # (the first: the check that the objective is logged, before the trials)
    last_not_best = 0
    for trial_id, accuracies in zip(tuner.oracle.start_order, runs):
        _, accuracy = tuner.load_model(tuner.oracle.trials[trial_id]).evaluate(
            X[90:], Y[90:], verbose=0)
        assert accuracy == pytest.approx(max(accuracies), abs=1e-6)  # its best epoch's
        last_not_best += accuracies[-1] < max(accuracies)
    assert last_not_best  # (or the test could not tell the best epoch from the last)
    assert seen and all(seen)


def test_a_hard_size_budget_is_never_exceeded_by_the_returned_model(tmp_path):
    objective = ConstrainedObjective("val_accuracy", cost="cost/params", target=400, hard=True)
    tuner = search(EvolutionSearch, tmp_path, objective, max_trials=8, population_size=3)
    sizes = [t.metrics.get_last_value("cost/params") for t in tuner.oracle.trials.values()]
    assert min(sizes) <= 400 < max(sizes), sizes  # the space has both kinds
    best = tuner.get_best_models(1)[0]
    assert best.count_params() <= 400
    rebuilt = dense_model(tuner.get_best_hyperparameters(1)[0])
    assert rebuilt.count_params() <= 400


def test_no_feasible_trial_is_a_clear_error(tmp_path):
    objective = ConstrainedObjective("val_accuracy", cost="cost/params", target=5, hard=True)
    tuner = search(RandomSearch, tmp_path, objective, max_trials=2)
    with pytest.raises(ValueError, match="no completed trial is within the budget"):
        tuner.get_best_models(1)


@pytest.mark.parametrize(
    "objective, fit_kwargs, missing",
    [
        ("val_f1_score", {"validation_split": 0.25}, "val_f1_score"),
        ("val_accuracy", {}, "val_accuracy"),
        (ConstrainedObjective("val_accuracy", cost="flops", target=1), {"validation_split": 0.2},
         "flops"),
    ],
)
def test_an_objective_training_does_not_log_fails_before_the_first_trial(
    objective, fit_kwargs, missing, tmp_path
):
    tuner = RandomSearch(dense_model, objective=objective, directory=str(tmp_path), max_trials=2)
    with pytest.raises(ValueError, match=f"the objective needs \\['{missing}'\\]"):
        tuner.search(X, Y, epochs=1, verbose=0, **fit_kwargs)
    assert tuner.oracle.trials == {}


def test_f1_score_objective_with_real_training(tmp_path):
    def f1_model(hp):
        model = keras.Sequential([
            keras.Input(shape=(6,)),
            keras.layers.Dense(hp.Choice("units", [4, 16]), activation="relu"),
            keras.layers.Dense(2, activation="softmax"),
        ])
        model.compile("adam", "categorical_crossentropy",
                      metrics=[keras.metrics.F1Score(average="macro")])
        return model

    tuner = RandomSearch(f1_model, objective="val_f1_score", max_trials=2, seed=1,
                         directory=str(tmp_path))
    tuner.search(X, keras.utils.to_categorical(Y, 2), validation_split=0.25, epochs=2, verbose=0)
    scores = [t.score for t in tuner.oracle.trials.values()]
    assert tuner.oracle.objective.direction == "max"
    assert tuner.oracle.get_best_trials(1)[0].score == max(scores)


def brute_force_front(points):
    return [
        i for i, p in enumerate(points)
        if not any(np.all(q >= p) and np.any(q > p) for q in points)
    ]


def test_ranks_and_front_match_brute_force():
    points = np.round(np.random.default_rng(3).normal(size=(40, 2)), 1)
    ranks = non_dominated_ranks(points)
    assert [i for i, r in enumerate(ranks) if r == 0] == brute_force_front(points)
    rest = [i for i, r in enumerate(ranks) if r > 0]
    second = [rest[i] for i in brute_force_front(points[rest])]
    assert [i for i, r in enumerate(ranks) if r == 1] == second
    distance = crowding_distance(points[:5])
    assert sorted(distance)[-2:] == [np.inf, np.inf]


def test_an_objective_with_one_value_makes_no_crowding_edges():
    # Three objectives, the third the same for all: Deb's edges are those of the
    # first two; the constant one used to give its (arbitrary) first and last
    # point an infinite distance, here the two interior points.
    front = [[0.5, 0.5, 5.0], [1.0, 0.0, 5.0], [0.0, 1.0, 5.0], [0.25, 0.75, 5.0]]
    assert crowding_distance(front) == [1.5, np.inf, np.inf, 1.0]
    line = [[1.0, 0.0], [3.0, 0.0], [2.0, 0.0], [0.0, 0.0]]
    assert crowding_distance(line) == [2 / 3, np.inf, 2 / 3, np.inf]
    # NSGA-II selection then keeps the wider gap over the narrower one.
    assert NSGA2Selection().discard(front, np.random.default_rng(0)) == 3


def test_pareto_front_of_trials_holds_exactly_the_non_dominated(tmp_path):
    objectives = [keras_tuner.Objective("acc", "max"), keras_tuner.Objective("size", "min")]
    points = np.random.default_rng(5).integers(0, 6, size=(30, 2)).astype(float)
    trials = []
    for i, (acc, size) in enumerate(points):
        trial = keras_tuner.engine.trial.Trial(keras_tuner.HyperParameters(), trial_id=str(i))
        trial.metrics.register("acc", "max")
        trial.metrics.register("size", "min")
        trial.metrics.update("acc", acc)
        trial.metrics.update("size", size)
        trial.status = "COMPLETED"
        trials.append(trial)
    trials[0].status = "FAILED"
    front = pareto_front(trials, objectives)
    maximised = np.stack([points[1:, 0], -points[1:, 1]], axis=1)
    expected = {str(i + 1) for i in brute_force_front(maximised)}
    assert {t.trial_id for t in front} == expected


def test_the_front_takes_each_trials_best_epoch_in_the_objectives_direction(tmp_path):
    # keras-tuner registers a metric of a list of objectives by the direction it
    # infers from the name: "min" for val_f1_score (and any name it does not
    # know). The front took each trial's worst F1 epoch as its best.
    objectives = [keras_tuner.Objective("val_f1_score", "max"),
                  keras_tuner.Objective("size", "min")]
    oracle = make(lambda **kw: EvolutionOracle(population_size=4, **kw), tmp_path,
                  objective=objectives)
    for history in ([0.2, 0.9], [0.5, 0.5]):  # equal sizes: the best F1 epoch decides
        trial = oracle.create_trial("t")
        for step, f1 in enumerate(history):
            oracle.update_trial(trial.trial_id, {"val_f1_score": f1, "size": 5.0}, step=step)
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    first, second = (oracle.trials[t] for t in oracle.end_order)
    assert [t.trial_id for t in pareto_front(oracle.trials.values(), objectives)] == [
        first.trial_id]
    assert best_value(first, objectives[0]) == 0.9 and best_value(first, objectives[1]) == 5.0
    # NSGA-II's fitness and the oracle's ranking read the same best epoch.
    assert oracle.fitness_vector(first) == [0.9, -5.0]
    assert [t.trial_id for t in oracle.get_best_trials(2)] == [first.trial_id, second.trial_id]
    nan_only = keras_tuner.engine.trial.Trial(keras_tuner.HyperParameters(), trial_id="x")
    nan_only.metrics.register("val_f1_score", "max")
    nan_only.metrics.metrics["val_f1_score"].update(float("nan"), step=0)
    assert best_value(nan_only, objectives[0]) is None  # no value: not on any front
    assert best_value(nan_only, objectives[1]) is None


def test_hypervolume_2d():
    assert hypervolume_2d([[1, 1]], [0, 0]) == 1
    assert hypervolume_2d([[2, 1], [1, 2]], [0, 0]) == 3
    assert hypervolume_2d([[2, 1], [1, 2], [1, 1]], [0, 0]) == 3
    assert hypervolume_2d([[-1, 5]], [0, 0]) == 0


def test_nsga2_evolution_finds_the_trade_off(tmp_path):
    objectives = [keras_tuner.Objective("acc", "max"), keras_tuner.Objective("size", "min")]

    def score(values):
        width = sum(values[f"edge_{e}"] == "conv3x3" for e in range(6))
        return {"acc": width + 0.5 * (values["edge_0"] == "skip"), "size": float(width)}

    def run(factory, seed):
        oracle = make(factory, tmp_path, name=f"n{seed}{id(factory)}", seed=seed,
                      objective=objectives, max_trials=40)
        for _ in range(40):
            trial = oracle.create_trial("t")
            oracle.update_trial(trial.trial_id, score(trial.hyperparameters.values))
            trial.status = "COMPLETED"
            oracle.end_trial(trial)
        front = pareto_front(oracle.trials.values(), objectives)
        return hypervolume_2d([[t.metrics.get_last_value("acc"), -t.metrics.get_last_value("size")]
                               for t in front], [-1, -7])

    nsga = [run(lambda **kw: EvolutionOracle(population_size=8, selection="nsga2", aging=False, **kw), s)
            for s in range(4)]
    rand = [run(lambda **kw: __import__("metanas").tuners.RandomSearchOracle(**kw), s) for s in range(4)]
    assert np.mean(nsga) >= np.mean(rand)


def test_nsga2_discard_removes_a_dominated_member():
    fitness = [[1.0, 1.0], [2.0, 2.0], [0.5, 3.0], [3.0, 0.5]]
    assert NSGA2Selection().discard(fitness, np.random.default_rng(0)) == 0
    picks = {NSGA2Selection().select(fitness, np.random.default_rng(s)) for s in range(50)}
    assert 0 not in picks or len(picks) == 4


def test_get_pareto_front_on_a_tuner(tmp_path):
    objective = ConstrainedObjective("val_accuracy", cost="cost/params", target=1000)
    tuner = search(RandomSearch, tmp_path, objective, max_trials=4)
    front = tuner.get_pareto_front()
    trials = list(tuner.oracle.trials.values())
    assert front and set(front) <= set(trials)
    for a, b in itertools.product(front, trials):
        acc_a, acc_b = (t.metrics.get_last_value("val_accuracy") for t in (a, b))
        size_a, size_b = (t.metrics.get_last_value("cost/params") for t in (a, b))
        assert not (acc_b >= acc_a and size_b <= size_a and (acc_b > acc_a or size_b < size_a))
    with pytest.raises(ValueError, match="two or more objectives"):
        tuner.get_pareto_front(["val_accuracy"])
    # Cost names take metanas's direction (min), as in objectives.
    assert set(tuner.get_pareto_front(["val_accuracy", "cost/params"])) == set(front)
    # A metric no trial logged (a typo) is an error, not an empty front.
    with pytest.raises(ValueError, match=r"no completed trial logged \['val_acc'\]; the trials "
                                         r"logged \[.*'val_accuracy'"):
        tuner.get_pareto_front([keras_tuner.Objective("val_acc", "max"), "cost/params"])
    # How many best models: an int >= 0 (numpy's too; 0: none, as keras-tuner), not -1 or "2".
    assert len(tuner.get_best_hyperparameters(np.int64(2))) == 2
    for call, name in ((tuner.get_best_models, "num_models"),
                       (tuner.get_best_hyperparameters, "num_trials")):
        assert call(0) == []
        for bad in (-1, "2", 1.5):
            with pytest.raises(ValueError, match=f"{name} must be an int >= 0, got {bad!r}"):
                call(bad)


def drive_multi(tmp_path, objective, points, name="m"):
    """An NSGA-II oracle fed the given metric dicts, one trial each."""
    oracle = make(lambda **kw: EvolutionOracle(population_size=4, selection="nsga2", aging=False,
                                               **kw), tmp_path, name=name, objective=objective,
                  max_trials=len(points))
    for metrics in points:
        trial = oracle.create_trial("t")
        oracle.update_trial(trial.trial_id, metrics)
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    return oracle


def test_best_trials_of_several_objectives_are_in_pareto_order(tmp_path):
    objectives = [keras_tuner.Objective("acc", "max"), keras_tuner.Objective("size", "min")]
    points = [{"acc": 0.9, "size": 1000.0}, {"acc": 0.8, "size": 100.0},
              {"acc": 0.7, "size": 100.0}, {"acc": 0.7, "size": 50.0},
              {"acc": 0.6, "size": 2000.0}, {"acc": 0.95, "size": 5000.0}]
    oracle = drive_multi(tmp_path, objectives, points)
    best = [int(t.trial_id) for t in oracle.get_best_trials(6)]
    front = {0, 1, 3, 5}
    assert set(best[:4]) == front  # keras-tuner's sum ranked (0.7, 50) and (0.7, 100) first
    assert set(best[:2]) == {3, 5}  # the front's ends: the largest crowding distance
    assert best[4:] == [2, 4]  # the second front, then the third


def test_the_pareto_ranking_is_kept_until_a_trial_is_added_or_ends(tmp_path):
    objectives = [keras_tuner.Objective("acc", "max"), keras_tuner.Objective("size", "min")]
    oracle = drive_multi(tmp_path, objectives, [{"acc": 0.5, "size": 100.0}], name="k")
    oracle.max_trials = 3
    calls = []
    order = oracle._pareto_order
    oracle._pareto_order = lambda: calls.append(1) or order()
    ids = lambda trials: [t.trial_id for t in trials]  # noqa: E731
    first = ids(oracle.get_best_trials(5))
    assert ids(oracle.get_best_trials(5)) == first and len(calls) == 1  # ranked once
    running = oracle.create_trial("t")  # a new trial: ranked again, last (not completed)
    assert ids(oracle.get_best_trials(5)) == first + [running.trial_id] and len(calls) == 2
    oracle.update_trial(running.trial_id, {"acc": 0.9, "size": 50.0})
    running.status = "COMPLETED"
    oracle.end_trial(running)  # it ends, and dominates the first
    assert ids(oracle.get_best_trials(5)) == [running.trial_id] + first and len(calls) == 3
    oracle.trials = dict(oracle.trials)  # as a reload replaces them
    assert ids(oracle.get_best_trials(5)) == [running.trial_id] + first and len(calls) == 4
    # A lost worker's re-run of the first trial reports late, after it ended:
    # its metrics change with neither the trial count nor end_order.
    oracle.update_trial(first[0], {"acc": 0.99, "size": 10.0}, step=1)
    assert ids(oracle.get_best_trials(5)) == first + [running.trial_id] and len(calls) == 5
    oracle.save()
    oracle.reload()  # refills the trials in place: the best are the reloaded objects
    assert all(t is oracle.trials[t.trial_id] for t in oracle.get_best_trials(5))


def test_a_constrained_objective_among_several_is_scored(tmp_path):
    objectives = [ConstrainedObjective("acc", cost="size", target=500),
                  keras_tuner.Objective("latency", "min")]
    points = [{"acc": 0.9, "size": 400.0, "latency": 2.0},
              {"acc": 0.95, "size": 900.0, "latency": 1.0},
              {"acc": 0.5, "size": 100.0, "latency": 3.0}]
    oracle = drive_multi(tmp_path, objectives, points, name="c")
    trials = [oracle.trials[t] for t in oracle.end_order]
    assert [t.status for t in trials] == ["COMPLETED"] * 3  # was: each failed, no value
    tradeoff = objectives[0].name
    assert all(t.metrics.exists(tradeoff) for t in trials)
    assert oracle.fitness_vector(trials[0]) == [objectives[0].get_value(points[0]), -2.0]
    assert oracle.get_best_trials(1)[0].status == "COMPLETED"


def test_a_search_whose_trials_all_failed_has_no_best(tmp_path, capsys):
    tuner = search(RandomSearch, tmp_path, "val_accuracy", max_trials=2, max_model_size=5)
    assert all(t.status == "FAILED" for t in tuner.oracle.trials.values())
    # A rejection, not an error: a line each, not keras-tuner's traceback.
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(re.findall(r"Trial \d+: a model of \d+ parameters, over max_model_size=5; "
                          r"not trained\.", err)) == 2
    for call in (tuner.get_best_models, tuner.get_best_hyperparameters):
        with pytest.raises(RuntimeError, match=r"no trial of 2 completed \(2 exceeded "
                                               r"max_model_size=5\)"):
            call(1)


@pytest.mark.parametrize("executions", [0, "2", True])
def test_a_bad_executions_per_trial_is_a_value_error(tmp_path, executions):
    # 0 ran every trial without training, then failed in keras-tuner's get_best_step.
    with pytest.raises(ValueError, match=f"executions_per_trial must be an int >= 1, "
                                         f"got {executions!r}"):
        RandomSearch(dense_model, objective="val_accuracy", executions_per_trial=executions,
                     directory=str(tmp_path))
    tuner = RandomSearch(dense_model, objective="val_accuracy", directory=str(tmp_path),
                         executions_per_trial=np.int64(2), project_name="ok", tracking=False)
    assert tuner.executions_per_trial == 2


def test_the_tracked_settings_are_the_values_the_oracle_uses(tmp_path):
    from metanas.tuners import EvolutionSearch

    tuner = EvolutionSearch(dense_model, objective="val_accuracy", population_size=6,
                            seed=3, directory=str(tmp_path), tracking=False)
    settings = tuner.strategy_settings
    oracle = tuner.oracle
    # Defaults given as None in the signature: what the oracle resolved them to.
    assert (settings["racing_fraction"], settings["finalists"], settings["tournament_size"]) == (
        oracle.racing_fraction, oracle.finalists, oracle.tournament_size) == (0.3, 8, 3)
    assert settings["population_size"] == 6 and settings["seed"] == 3
    assert settings["heartbeat_timeout"] == 120.0 and "hyperparameters" in settings
    # Unseeded, the seed the oracle drew; resumed, the saved one (not a new draw).
    fresh = EvolutionSearch(dense_model, objective="val_accuracy", directory=str(tmp_path),
                            project_name="unseeded", tracking=False)
    fresh.save()
    resumed = EvolutionSearch(dense_model, objective="val_accuracy", directory=str(tmp_path),
                              project_name="unseeded", overwrite=False, tracking=False)
    assert fresh.strategy_settings["seed"] == fresh.oracle.seed
    assert resumed.strategy_settings["seed"] == resumed.oracle.seed == fresh.oracle.seed
    # Resumed with another seed: the saved one still (as keras-tuner's), and said so.
    reseeded = EvolutionSearch(dense_model, objective="val_accuracy", directory=str(tmp_path),
                               project_name="unseeded", overwrite=False, tracking=False,
                               seed=fresh.oracle.seed + 1)
    assert reseeded.strategy_settings["seed"] == reseeded.oracle.seed == fresh.oracle.seed


@pytest.mark.parametrize("size", ["700", 0, -3, 2.5, True])
def test_a_bad_max_model_size_is_a_value_error(tmp_path, size):
    with pytest.raises(ValueError, match=f"max_model_size must be an int >= 1 .* got {size!r}"):
        RandomSearch(dense_model, objective="val_accuracy", max_model_size=size,
                     directory=str(tmp_path))


def test_numpy_numbers_are_accepted_as_settings(tmp_path):
    tuner = RandomSearch(dense_model, objective="val_accuracy", max_model_size=np.int64(700),
                         heartbeat_timeout=np.float32(5), max_trials=np.int64(3),
                         directory=str(tmp_path), tracking=False)
    assert tuner.max_model_size == 700 and type(tuner.max_model_size) is int
    assert tuner.oracle.heartbeat_timeout == 5.0


def test_pareto_front_plot_is_a_png_and_logged_to_mlflow(tmp_path):
    from mlflow.tracking import MlflowClient

    from metanas.plots import plot_pareto_front
    from metanas.tracking import MlflowTracker

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    objective = ConstrainedObjective("val_accuracy", cost="cost/params", target=1000)
    tuner = search(RandomSearch, tmp_path, objective, max_trials=3,
                   tracking=MlflowTracker(tracking_uri=uri))
    client = MlflowClient(tracking_uri=uri)
    (parent,) = client.search_runs(
        [client.get_experiment_by_name("p").experiment_id], "tags.`metanas.role` = 'search'")
    logged = client.download_artifacts(parent.info.run_id, "pareto_front.png", str(tmp_path))
    assert open(logged, "rb").read()[:8] == b"\x89PNG\r\n\x1a\n"
    single = search(RandomSearch, tmp_path / "single", "val_accuracy", max_trials=1,
                    tracking=MlflowTracker(tracking_uri=uri))
    (parent,) = client.search_runs(
        [client.get_experiment_by_name("p").experiment_id],
        f"tags.`metanas.role` = 'search' and attributes.run_id != '{parent.info.run_id}'")
    assert "pareto_front.png" not in {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert single.oracle.trials
    # A search with no completed trial: a plot that says so, without matplotlib's warning
    # of a legend with nothing in it.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        empty = plot_pareto_front([], [], [keras_tuner.Objective("val_accuracy", "max"),
                                           keras_tuner.Objective("cost/params", "min")],
                                  str(tmp_path / "empty.png"))
    assert open(empty, "rb").read()[:8] == b"\x89PNG\r\n\x1a\n"
    objectives = [keras_tuner.Objective("cost/params", "min"),
                  keras_tuner.Objective("val_accuracy", "max")]
    path = plot_pareto_front(tuner.oracle.trials.values(), tuner.get_pareto_front(objectives),
                             objectives, str(tmp_path / "front.png"))
    assert (tmp_path / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.endswith("front.png")


class SubclassedModel(keras.Model):
    def __init__(self, units):
        super().__init__()
        self.hidden = keras.layers.Dense(units, activation="relu")
        self.out = keras.layers.Dense(2, activation="softmax")

    def call(self, inputs):
        return self.out(self.hidden(inputs))


@pytest.mark.parametrize("kind", ["subclassed", "sequential without Input"])
def test_models_unbuilt_when_training_starts_are_measured_after_their_first_epoch(kind, tmp_path):
    # keras-tuner trains these; measuring their costs must not fail the trial.
    def build(hp):
        units = hp.Choice("units", [3, 5])
        if kind == "subclassed":
            model = SubclassedModel(units)
        else:
            model = keras.Sequential([keras.layers.Dense(units, activation="relu"),
                                      keras.layers.Dense(2, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    tuner = EvolutionSearch(build, objective="val_accuracy", max_trials=2, seed=1,
                            directory=str(tmp_path), racing_fraction=0)
    tuner.search(X, Y, validation_split=0.25, epochs=2, verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert [t.status for t in trials] == ["COMPLETED", "COMPLETED"]
    for trial in trials:
        units = trial.hyperparameters.get("units")
        params = 6 * units + units + units * 2 + 2
        assert trial.metrics.get_last_value("cost/params") == params
        assert trial.metrics.get_last_value("cost/flops") > 0


def test_an_objective_a_callback_logs_is_not_refused(tmp_path):
    class Doubled(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_doubled"] = 2 * logs["val_accuracy"]

    objective = keras_tuner.Objective("val_doubled", "max")
    tuner = EvolutionSearch(dense_model, objective=objective, max_trials=2, seed=1,
                            directory=str(tmp_path), racing_fraction=0)
    with pytest.warns(UserWarning, match=r"needs \['val_doubled'\].*unless one of the callbacks"):
        tuner.search(X, Y, validation_split=0.25, epochs=1, verbose=0, callbacks=[Doubled()])
    for trial in tuner.oracle.trials.values():
        assert trial.status == "COMPLETED"
        assert trial.score == pytest.approx(2 * trial.metrics.get_last_value("val_accuracy"))


class TwiceLossModel(SubclassedModel):
    """Logs a metric of its own from `train_step` only (evaluating cannot show it)."""

    def train_step(self, data):
        logs = super().train_step(data)
        return {**logs, "twice_loss": 2 * logs["loss"]}


def test_an_objective_the_models_own_train_step_logs_is_not_refused(tmp_path):
    def build(hp):
        model = TwiceLossModel(hp.Choice("units", [3, 5]))
        model.compile("adam", "sparse_categorical_crossentropy")
        return model

    tuner = EvolutionSearch(build, objective=keras_tuner.Objective("twice_loss", "min"),
                            max_trials=2, seed=1, directory=str(tmp_path), racing_fraction=0,
                            tracking=False)
    with pytest.warns(UserWarning, match=r"needs \['twice_loss'\].*unless the model's own "
                                         "train_step logs it"):
        tuner.search(X, Y, epochs=1, verbose=0)
    for trial in tuner.oracle.trials.values():
        assert trial.status == "COMPLETED"
        assert trial.score == pytest.approx(2 * trial.metrics.get_last_value("loss"), rel=1e-5)


def test_a_metrics_dict_from_run_trial_serves_a_computed_objective(tmp_path):
    # keras-tuner's documented custom loop returns a dict; keras-tuner itself refused it
    # for a computed objective ("Expected the returned dictionary ... to have ...").
    class Custom(RandomSearch):
        def run_trial(self, trial, *args, **kwargs):
            x = trial.hyperparameters.Int("x", 0, 3)
            return {"val_accuracy": 0.5 + 0.1 * x, "val_cost": 1.0 + x}

    for objective in (ConstrainedObjective("val_accuracy", cost="val_cost", target=2.0,
                                           weight=-1.0),
                      [keras_tuner.Objective("val_accuracy", "max"),
                       keras_tuner.Objective("val_cost", "min")]):
        tuner = Custom(objective=objective, max_trials=4, seed=0, directory=str(tmp_path),
                       project_name=f"p{len(str(objective))}", tracking=False,
                       cost_measures=False)
        tuner.search(verbose=0)
        trials = list(tuner.oracle.trials.values())
        assert [t.status for t in trials] == ["COMPLETED"] * 4
        if isinstance(objective, ConstrainedObjective):
            # accuracy * (cost / 2) ** -1 within budget: x = 0 (0.5 * 2) beats x = 3 (0.8 / 2)
            best = tuner.oracle.get_best_trials(1)[0]
            assert best.hyperparameters.get("x") == 0
            assert best.score == pytest.approx(1.0)


def test_a_run_trial_of_ones_own_without_the_cost_is_told_how_to_log_it(tmp_path):
    # Was a bare KeyError: 'cost/params' in every trial, then get_best_* said to
    # raise the budget's target although no trial had completed.
    class Custom(RandomSearch):
        def run_trial(self, trial, *args, **kwargs):  # keras-tuner's documented pattern
            model = self.hypermodel.build(trial.hyperparameters)
            return model.fit(X, Y, validation_split=0.25, epochs=1, verbose=0)

    objective = ConstrainedObjective("val_accuracy", cost="cost/params", target=10, hard=True)
    tuner = Custom(dense_model, objective=objective, max_trials=3, seed=0,
                   directory=str(tmp_path), tracking=False)
    with pytest.raises(RuntimeError, match="consecutive failures"):
        tuner.search(verbose=0)
    message = list(tuner.oracle.trials.values())[0].message
    assert "metrics hold 'val_accuracy' but not the cost 'cost/params'" in message
    assert "CostLogger() among fit's callbacks" in message
    with pytest.raises(RuntimeError, match="no trial of 3 completed; there is no best model"):
        tuner.get_best_hyperparameters()
