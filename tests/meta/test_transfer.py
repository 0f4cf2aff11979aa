"""Transfer of evolution's elite between similar tasks, through a real Optuna storage."""

import optuna
import pytest

from metanas.meta import MetaLearner, MetaTask, TransferStore, elite_of
from metanas.tuners import EvolutionOracle, RandomSearchOracle
from tests.tuners.conformance import drive, make, nas_score, nas_space, small_space

optuna.logging.set_verbosity(optuna.logging.WARNING)

NEAR = {"log_samples": 3.0, "modality": "image"}


def evolve(tmp_path, name, max_trials=40, **kwargs):
    oracle = make(
        lambda **kw: EvolutionOracle(population_size=8, mutation_rate=0.3, **kw),
        tmp_path, name=name, max_trials=max_trials, **kwargs,
    )
    drive(oracle, nas_score)
    return oracle


def test_elite_is_the_best_of_the_final_population(tmp_path):
    oracle = evolve(tmp_path, "a")
    elite = elite_of(oracle, size=3)
    population_scores = sorted((nas_score(oracle.trial_values(t)) for t in oracle.population), reverse=True)
    assert [nas_score(c) for c in elite] == population_scores[:3]
    assert len(elite_of(oracle)) == 8  # the population size by default
    with pytest.raises(ValueError, match="size must be an int >= 1, got 0"):
        elite_of(oracle, size=0)


def test_a_similar_task_starts_from_the_elite_and_finds_good_configurations_sooner(tmp_path):
    storage = f"sqlite:///{tmp_path}/meta.db"
    source = evolve(tmp_path, "source", seed=1)
    TransferStore(MetaLearner(storage)).save(MetaTask("source", NEAR), source, size=4)

    # A new process would open the storage afresh: so does this store.
    start = TransferStore(MetaLearner(storage)).warm_start(
        {"log_samples": 3.1, "modality": "image"}, hyperparameters=nas_space()
    )
    assert start.source == "source" and len(start.elite) == 4
    warm = evolve(tmp_path, "warm", max_trials=4, seed=2, **start.oracle_kwargs())
    cold = evolve(tmp_path, "cold", max_trials=4, seed=2)
    best = lambda o: max(nas_score(o.trial_values(t)) for t in o.end_order)  # noqa: E731
    assert [warm.trial_values(t) for t in warm.start_order] == start.elite
    assert best(warm) == max(nas_score(source.trial_values(t)) for t in source.population)
    assert best(warm) > best(cold)


def test_no_transfer_across_spaces_distant_tasks_or_left_out_tasks(tmp_path):
    store = TransferStore(MetaLearner(f"sqlite:///{tmp_path}/meta.db"))
    assert store.warm_start(NEAR).source is None  # nothing stored: cold start
    store.save(MetaTask("source", NEAR), evolve(tmp_path, "source"))
    assert store.warm_start(NEAR, hyperparameters=small_space()).source is None
    assert store.warm_start({"log_samples": 7.0, "modality": "text"}).source is None
    assert store.warm_start(NEAR, exclude_tasks=["source"]).source is None
    assert store.warm_start(NEAR, hyperparameters=["edge_%d" % e for e in range(6)]).source == "source"
    assert store.warm_start(NEAR).oracle_kwargs()["initial_hps"][0]["edge_0"] == "conv3x3"
    # What is no mapping of meta-features would follow no task, quietly: refused.
    for bad, message in (({"log_sample": 3.0}, r"unknown meta-features \['log_sample'\]"),
                         ({"log_samples": float("nan")}, "'log_samples' must be a finite number"),
                         ("source", "features must be a mapping")):
        with pytest.raises(ValueError, match=message):
            store.warm_start(bad)


def test_any_oracle_leaves_an_elite_and_bad_input_is_rejected(tmp_path):
    oracle = make(lambda **kw: RandomSearchOracle(**kw), tmp_path, max_trials=12)
    drive(oracle, nas_score)
    assert len(elite_of(oracle, size=5)) == 5
    with pytest.raises(ValueError, match="learner must be a MetaLearner"):
        TransferStore("sqlite:///x.db")


def test_the_controller_policy_carries_over_to_a_similar_task(tmp_path):
    from metanas.tuners import RLControllerOracle

    def controller(name, trials, seed, units=32):
        return make(lambda **kw: RLControllerOracle(units=units, learning_rate=0.05,
                                                    num_initial_points=0, **kw),
                    tmp_path, name=name, max_trials=trials, seed=seed)

    source = controller("source", 30, seed=1)
    drive(source, nas_score)
    store = TransferStore(MetaLearner(f"sqlite:///{tmp_path}/meta.db"))
    record = store.save(MetaTask("source", NEAR), source)
    assert record["policy"]["decisions"][0] == ["edge_0", 5]

    start = TransferStore(MetaLearner(f"sqlite:///{tmp_path}/meta.db")).warm_start(NEAR)
    warm, cold = controller("warm", 8, seed=2), controller("cold", 8, seed=2)
    assert start.apply(warm)
    mode = lambda o: o.strategy_diagnostics()["policy/mode_prob"]  # noqa: E731
    assert mode(warm) == pytest.approx(mode(source), rel=1e-6)
    mean = lambda configs: sum(map(nas_score, configs)) / len(configs)  # noqa: E731
    assert mean(drive(warm, nas_score)) > mean(drive(cold, nas_score)) + 0.5
    cold = controller("cold2", 5, seed=2)
    # A controller of another shape, or one whose search has begun, keeps its own policy.
    assert not start.apply(controller("wide", 5, seed=2, units=64))
    drive(cold, nas_score, trials=1)
    assert not start.apply(cold)


def test_save_refuses_a_nameless_task_and_what_is_no_oracle(tmp_path):
    import collections

    store = TransferStore(MetaLearner(f"sqlite:///{tmp_path}/meta.db"))
    for name, features, message in (("", NEAR, "name must be a non-empty string, got ''"),
                                    (" ", NEAR, "name must be a non-empty string, got ' '"),
                                    ("t", None, "features must be a mapping .*got None")):
        with pytest.raises(ValueError, match=message):
            MetaTask(name, features)
    with pytest.raises(ValueError, match="oracle must be a metanas oracle .*got 'notanoracle'"):
        store.save(MetaTask("t", NEAR), "notanoracle")
    look_alike = collections.namedtuple("Task", "name features")("", NEAR)
    oracle = make(lambda **kw: RandomSearchOracle(**kw), tmp_path, max_trials=3)
    drive(oracle, nas_score)
    with pytest.raises(ValueError, match="task must be a MetaTask.*got Task"):
        store.save(look_alike, oracle)
    with pytest.raises(ValueError, match="task must be a MetaTask"):
        store.put(look_alike, elite=[], space=[], strategy="RandomSearchOracle")
    assert store.records() == {} and store.warm_start(NEAR).source is None
