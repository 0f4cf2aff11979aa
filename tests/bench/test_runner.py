"""The harness runs every strategy through keras-tuner or Optuna and measures it."""

import numpy as np
import pytest

from metanas.bench import (
    MULTI_OBJECTIVE_METRICS,
    STRATEGIES,
    TableTuner,
    load_task,
    run_many,
    run_one,
    summarise_history,
    time_budget,
)
from metanas.bench.hypervolume import best_hypervolume, hypervolume_of
from metanas.bench.reference import RegularizedEvolutionOracle
from metanas.bench.strategies import MULTI_OBJECTIVE_STRATEGIES

TASK = "nb201/cifar10"


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s != "kt/bayesian"])
def test_every_strategy_runs_and_is_measured(strategy):
    evals = 25
    result = run_one(TASK, strategy, seed=3, evals=evals, use_time=False)
    task = load_task(TASK)
    assert result["evals"] == evals and len(result["curve"]) == evals
    assert all(c >= 0 for c in result["curve"])
    assert result["regret"] >= 0
    assert result["regret"] == pytest.approx(task.regret(task.true_score(result["incumbent"])))
    assert result["curve"][-1] == pytest.approx(result["regret"], rel=1e-5)
    assert 1 <= result["unique"] <= evals
    assert result["overhead_ms"] > 0 and 0 <= result["propose_ms"] <= result["overhead_ms"]
    # The same seed gives the same search.
    again = run_one(TASK, strategy, seed=3, evals=evals, use_time=False)
    assert again["curve"] == result["curve"] and again["incumbent"] == result["incumbent"]


def test_keras_tuner_peers_are_repeatable_from_seed_0_and_seeds_do_not_replay_each_other():
    # keras-tuner turns seed 0 into a random seed, and draws its i-th value with
    # seed + i: seeds s and s + 5 (5 values per trial) would share configurations.
    import keras_tuner

    space = load_task("hpobench/car").hyperparameters()

    def configurations(seed):
        oracle = STRATEGIES["kt/random"].make(
            objective=keras_tuner.Objective("score", "max"), max_trials=6, seed=seed)
        oracle.hyperparameters = space.copy()
        return [oracle.populate_space(str(i))["values"] for i in range(6)]

    assert configurations(0) == configurations(0)
    for seed in (1, 2, 3):
        assert configurations(seed)[1:] != configurations(seed + len(space.space))[:-1]


@pytest.mark.slow
def test_keras_tuner_bayesian_optimization_runs_past_its_random_start():
    # 5 hyperparameters: keras-tuner's first 3 * 5 = 15 trials are random, the
    # 16th fits its Gaussian process (seconds per trial).
    result = run_one("hpobench/car", "kt/bayesian", seed=0, evals=16)
    assert result["evals"] == 16 and result["regret"] >= 0
    assert result["propose_ms"] > 10 * run_one(
        "hpobench/car", "kt/bayesian", seed=0, evals=15)["propose_ms"]


def test_incumbent_is_chosen_by_observed_score_and_judged_by_true_score():
    task = load_task(TASK)
    good = task.config(int(np.nanargmax(task.mean_scores)))
    bad = task.config(int(np.nanargmin(task.mean_scores)))
    # The bad one observed (by luck) higher: the search returns it.
    history = [{"values": good, "observed": 80.0}, {"values": bad, "observed": 95.0},
               {"values": good, "observed": 90.0}]
    out = summarise_history(task, history, evals=3)
    assert out["incumbent"] == bad and out["unique"] == 2
    # The search found the optimum even though noise made it return another.
    assert out["found_regret"] == pytest.approx(0.0, abs=1e-9)
    assert out["regret"] > 1.0
    assert out["curve"][0] == pytest.approx(0.0, abs=1e-9)
    assert out["curve"][1] == pytest.approx(task.optimum - task.true_score(bad), rel=1e-5)
    assert out["regret"] == pytest.approx(task.optimum - task.true_score(bad))


def test_nb201_runs_to_the_simulated_time_budget():
    task = load_task(TASK)
    budget = time_budget(task)
    assert budget == pytest.approx(50 * np.median(task.columns["train_time"]))
    assert time_budget(load_task("hpobench/car")) is None
    result = run_one(TASK, "metanas/random", seed=1, evals=10)
    # 10 evaluations cost less than the budget, so the run went on past them.
    assert result["evals"] == 10 and result["time_evals"] > 10
    assert result["time_regret"] >= 0


def test_table_tuner_is_a_keras_tuner_tuner_reading_the_table(tmp_path):
    import keras_tuner

    task = load_task("hpolib/naval_propulsion")
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("score", "min"), max_trials=5, seed=1)
    tuner = TableTuner(task, oracle=oracle, noise_seed=0, directory=str(tmp_path))
    assert isinstance(tuner, keras_tuner.Tuner)
    tuner.search(verbose=0)
    trials = tuner.oracle.get_best_trials(5)
    assert len(trials) == 5
    for trial in trials:
        values = trial.hyperparameters.values
        code = task.code(values)
        assert trial.score in task.scores[code, : task.seed_counts[code]]


def test_the_table_noise_is_not_the_strategys_own_random_stream(tmp_path):
    # A run's noise once came from default_rng(seed): the very stream a metanas
    # oracle (and the reference evolution) seeded with the run's seed draws its
    # decisions from, so the k-th training seed drawn followed its k-th number.
    import keras_tuner

    from metanas.tuners import RandomSearchOracle

    task = load_task(TASK)
    same = 0
    for seed in range(40):
        oracle = RandomSearchOracle(objective=keras_tuner.Objective("score", "max"),
                                    max_trials=1, seed=seed)
        tuner = TableTuner(task, oracle=oracle, noise_seed=seed,
                           directory=str(tmp_path / str(seed)))
        reference = RegularizedEvolutionOracle(objective=keras_tuner.Objective("score", "max"),
                                               max_trials=1, seed=seed)
        noise = tuner.noise.integers(3, size=10)
        same += np.array_equal(noise, oracle._rng.integers(3, size=10))
        same += np.array_equal(noise, reference._rng.integers(3, size=10))
    assert same == 0


def test_reference_evolution_mutates_one_decision_of_a_population_member():
    import keras_tuner

    task = load_task(TASK)
    oracle = RegularizedEvolutionOracle(
        objective=keras_tuner.Objective("score", "max"), max_trials=30, seed=0,
        hyperparameters=task.hyperparameters())
    tuner = TableTuner(task, oracle=oracle, noise_seed=0, directory="/tmp/metanas-test-ref",
                       overwrite=True)
    tuner.search(verbose=0)
    history = [r["values"] for r in tuner.history]
    for i in range(10, 30):
        window = history[max(0, i - 10):i]
        assert any(sum(a[k] != history[i][k] for k in a) == 1 for a in window), i
    with pytest.raises(ValueError, match="sample_size must be an int >= 1, got 0"):
        RegularizedEvolutionOracle(sample_size=0)


def test_two_objective_task_reports_hypervolume_within_the_table_front():
    best = best_hypervolume(TASK)
    assert 0 < best <= 1
    task = load_task(TASK)
    assert hypervolume_of(task, []) == 0.0
    for strategy in MULTI_OBJECTIVE_STRATEGIES:
        result = run_one(TASK, strategy, seed=0, evals=30, multi_objective=True)
        assert 0 < result["hypervolume"] <= best + 1e-12
    # One point of the front beats a dominated one.
    acc, size = task.columns[MULTI_OBJECTIVE_METRICS[0]], task.columns[MULTI_OBJECTIVE_METRICS[1]]
    top = int(np.nanargmax(acc))
    assert hypervolume_of(task, [(acc[top], size[top])]) > hypervolume_of(
        task, [(acc[top] - 5, size[top] + 0.1)])


def test_run_many_in_processes_matches_one_process():
    jobs = [{"task_name": TASK, "strategy": s, "seed": 2, "evals": 15, "use_time": False}
            for s in ("metanas/evolution", "optuna/random")]
    parallel = run_many(jobs, workers=2)
    serial = run_many(jobs, workers=1)
    assert [r["curve"] for r in parallel] == [r["curve"] for r in serial]
    assert [r["strategy"] for r in parallel] == ["metanas/evolution", "optuna/random"]


def test_bad_run_settings_are_clear_errors():
    with pytest.raises(ValueError, match="unknown strategy 'kt/hyperband'"):
        run_one(TASK, "kt/hyperband", seed=0)
    with pytest.raises(ValueError, match="evals must be an int >= 1, got 0"):
        run_one(TASK, "metanas/random", seed=0, evals=0)
    with pytest.raises(ValueError, match="seed must be an int >= 0, got -1"):
        run_one(TASK, "metanas/random", seed=-1)
    with pytest.raises(ValueError, match="workers must be an int >= 1, got 0"):
        run_many([], workers=0)


def test_intensification_evaluates_challengers_again_and_returns_a_trusted_incumbent(tmp_path):
    import keras_tuner

    from metanas.tuners import EvolutionOracle

    task = load_task("hpobench/australian")  # 5 noisy training seeds per configuration
    oracle = EvolutionOracle(objective=keras_tuner.Objective("score", "max"), max_trials=60,
                             seed=4, incumbent_evaluations=3, racing_fraction=0.0)
    tuner = TableTuner(task, oracle=oracle, noise_seed=4, directory=str(tmp_path))
    tuner.search(verbose=0)
    observed = {}
    for record in tuner.history:
        observed.setdefault(task.code(record["values"]), []).append(record["observed"])
    counts = sorted(len(v) for v in observed.values())
    assert len(tuner.history) == 60 and counts[-1] == 3 and counts.count(2) + counts.count(3) >= 3
    # The returned configuration was evaluated 3 times and has the best mean of
    # those that were; a configuration evaluated fewer times never outranks it.
    best = tuner.oracle.get_best_trials(1)[0]
    code = task.code(best.hyperparameters.values)
    trusted = {c: np.mean(v) for c, v in observed.items() if len(v) == 3}
    assert len(observed[code]) == 3 and np.mean(observed[code]) == max(trusted.values())
    assert tuner.history[-1]["returned"] == best.hyperparameters.values
    result = summarise_history(task, tuner.history, evals=60)
    assert result["incumbent"] == best.hyperparameters.values
    assert result["observed"] == pytest.approx(np.mean(observed[code]))
    # The repeats live in the state: a reloaded oracle ranks the same way.
    reloaded = EvolutionOracle(objective=keras_tuner.Objective("score", "max"), max_trials=60,
                               seed=4, incumbent_evaluations=3, racing_fraction=0.0)
    TableTuner(task, oracle=reloaded, noise_seed=4, directory=str(tmp_path), overwrite=False)
    assert reloaded.get_best_trials(1)[0].trial_id == best.trial_id


def test_intensification_setting_is_validated():
    from metanas.tuners import EvolutionOracle

    with pytest.raises(ValueError, match="incumbent_evaluations must be an int >= 1, got 0"):
        EvolutionOracle(incumbent_evaluations=0)
    with pytest.raises(ValueError, match="incumbent_evaluations=3 needs a single objective"):
        EvolutionOracle(objective=["val_loss", "val_accuracy"], incumbent_evaluations=3)
    assert EvolutionOracle(objective=["val_loss", "val_accuracy"]).incumbent_evaluations == 1


def test_a_racing_search_is_measured_on_its_own_budget_before_the_time_budget():
    from metanas.tuners import EvolutionOracle

    race = int(EvolutionOracle.default_racing_fraction * 40)
    assert race > 0
    # The run to NAS-Bench-201's time budget caps max_trials at 4x evals, where
    # a race would come late: the 40-evaluation measures come from a run of 40,
    # whose last `race` evaluations re-evaluate finalists.
    timed = run_one(TASK, "metanas/evolution", seed=2, evals=40, use_time=True)
    plain = run_one(TASK, "metanas/evolution", seed=2, evals=40, use_time=False)
    assert timed["unique"] == plain["unique"] == 40 - race
    assert timed["curve"] == plain["curve"] and timed["incumbent"] == plain["incumbent"]
    assert "time_regret" in timed and "time_regret" not in plain


def test_a_finished_table_search_leaves_its_oracle_to_the_garbage_collector(tmp_path):
    # keras-tuner's `synchronized` keys module-level dicts by oracle; without
    # `release_oracle` every searched oracle (RL policy included) lived forever.
    import gc
    import weakref

    import keras_tuner

    from metanas.tuners import RLControllerOracle

    task = load_task("nb201/cifar10")
    oracle = RLControllerOracle(objective=keras_tuner.Objective("score", task.direction),
                                max_trials=6, seed=0, num_initial_points=2, units=8)
    tuner = TableTuner(task, oracle=oracle, noise_seed=0, directory=str(tmp_path))
    tuner.search(verbose=0)
    assert len(tuner.oracle.end_order) == 6
    alive = weakref.ref(oracle)
    del oracle, tuner
    gc.collect()
    assert alive() is None

