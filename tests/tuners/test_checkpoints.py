"""A trial's best-epoch checkpoint: written whole or not at all.

Keras writes ``checkpoint.weights.h5`` in place through HDF5; a full disk in
the middle left the file torn and HDF5 holding objects it could not flush,
and the process crashed at exit (a segmentation fault, measured on a full
tmpfs with keras 3.12 and h5py 3.14). metanas builds the file in memory and
renames it into place.
"""

import errno
import os

import keras
import keras_tuner
import numpy as np
import pytest

from metanas.tuners import DiskFullError, EvolutionSearch, storage
from tests.tracking.helpers import fill_disk_once

X = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
Y = (X[:, 0] > 0).astype("int32")


def dense(units, seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(units),
                             keras.layers.Dense(2)])


def same_weights(model, other):
    return all(np.array_equal(a, b) for a, b in zip(model.get_weights(), other.get_weights()))


def test_a_checkpoint_loads_back_as_keras_saved_it(tmp_path):
    path = str(tmp_path / "checkpoint.weights.h5")
    model = dense(8, seed=1)
    storage.save_weights_atomically(model, path)
    loaded = dense(8, seed=2)
    assert not same_weights(model, loaded)
    loaded.load_weights(path)
    assert same_weights(model, loaded)
    assert os.listdir(tmp_path) == ["checkpoint.weights.h5"]
    with pytest.raises(ValueError, match="not yet been built"):
        storage.save_weights_atomically(keras.Sequential([keras.layers.Dense(2)]), path)


def test_a_full_disk_keeps_the_previous_checkpoint_and_leaves_no_temporary_file(
        tmp_path, monkeypatch):
    path = str(tmp_path / "checkpoint.weights.h5")
    first = dense(8, seed=1)
    storage.save_weights_atomically(first, path)
    fill_disk_once(monkeypatch, [storage], "checkpoint.weights.h5")
    with pytest.raises(OSError) as raised:
        storage.save_weights_atomically(dense(8, seed=2), path)
    assert raised.value.errno == errno.ENOSPC and path in str(raised.value)
    assert os.listdir(tmp_path) == ["checkpoint.weights.h5"]
    loaded = dense(8, seed=3)
    loaded.load_weights(path)
    assert same_weights(first, loaded)


class Dense(keras_tuner.HyperModel):
    def build(self, hp):
        model = keras.Sequential([keras.Input((4,)),
                                  keras.layers.Dense(hp.Choice("units", [2, 4, 6, 8])),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy")
        return model


def test_a_full_disk_at_a_checkpoint_stops_the_search_and_the_search_resumed_ends_it(
        tmp_path, monkeypatch):
    tuner = EvolutionSearch(Dense(), objective="loss", max_trials=4, seed=3, population_size=2,
                            directory=str(tmp_path), project_name="p", tracking=False)
    fill_disk_once(monkeypatch, [storage], "checkpoint.weights.h5")
    with pytest.raises(DiskFullError, match=r"trial 0 could not write to disk \(\[Errno 28\] "
                                            r"could not save .*checkpoint.weights.h5"):
        tuner.search(X, Y, epochs=1, verbose=0)
    trials = tuner.oracle.trials
    assert [trials[t].status for t in sorted(trials)] == ["RUNNING"]
    assert os.listdir(tuner.get_trial_dir("0")) == ["trial.json"]  # no torn checkpoint
    values = dict(trials["0"].hyperparameters.values)
    tuner.search(X, Y, epochs=1, verbose=0)  # space freed: the notebook searches again
    assert [trials[t].status for t in sorted(trials)] == ["COMPLETED"] * 4
    assert trials["0"].hyperparameters.values == values
    for trial_id in sorted(trials):  # each checkpoint whole, none left half-way
        names = os.listdir(tuner.get_trial_dir(trial_id))
        assert "checkpoint.weights.h5" in names and not [n for n in names if "tmp" in n]
    best = tuner.oracle.get_best_trials(1)[0]
    model = tuner.get_best_models(1)[0]
    keras_loaded = tuner.hypermodel.build(best.hyperparameters)
    keras_loaded.load_weights(os.path.join(tuner.get_trial_dir(best.trial_id),
                                           "checkpoint.weights.h5"))
    assert same_weights(model, keras_loaded) and np.isfinite(model.predict(X, verbose=0)).all()


def test_weights_too_large_to_hold_twice_in_memory_are_left_to_keras(tmp_path, monkeypatch):
    from keras.src.saving import saving_lib

    path = str(tmp_path / "checkpoint.weights.h5")
    model = dense(8, seed=1)
    written = []
    monkeypatch.setattr(model, "save_weights", lambda to: written.append(to))
    storage.save_weights_atomically(model, path)
    assert written == [] and os.path.exists(path)  # built in memory
    os.remove(path)
    monkeypatch.setattr(saving_lib, "is_memory_sufficient", lambda model: False)
    storage.save_weights_atomically(model, path)
    assert written == [path] and not os.path.exists(path)  # Keras's own, in place
