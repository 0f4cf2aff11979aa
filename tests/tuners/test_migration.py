"""keras-tuner's documented usage patterns, run with the metanas tuners.

Each test is a pattern from keras-tuner's guides that must behave as it does
with `keras_tuner.RandomSearch` (small real training on scikit-learn's digits).
"""

from __future__ import annotations

from typing import Tuple

import keras
import keras_tuner
import numpy as np
import pytest
from sklearn.datasets import load_digits

from metanas.tuners import EvolutionOracle, RandomSearch

Data = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@pytest.fixture(scope="module")
def digits() -> Data:
    """200 training and 100 validation rows of the 8x8 digits, scaled to [0, 1]."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    y = y.astype("int32")
    return x[:200], y[:200], x[200:300], y[200:300]


def compiled_without_metrics(hp: keras_tuner.HyperParameters) -> keras.Model:
    """A model compiled with a loss and no metrics: the tuner's ``metrics=`` adds them."""
    model = keras.Sequential([
        keras.Input(shape=(64,)),
        keras.layers.Dense(hp.Choice("units", [8, 16]), activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def test_tuner_metrics_keyword_logs_the_objective(digits: Data, tmp_path) -> None:
    """keras-tuner's ``metrics=`` recompiles every model with them, so the
    objective ``val_accuracy`` is logged: the check before the first trial must
    build the model as a trial does, not refuse the search."""
    x, y, x_val, y_val = digits
    keras.utils.set_random_seed(0)
    tuner = RandomSearch(
        compiled_without_metrics, objective="val_accuracy", max_trials=1, seed=1,
        metrics=["accuracy"], directory=str(tmp_path), project_name="metrics",
        tracking=False, cost_measures=False,
    )
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=1, verbose=0)
    (trial,) = tuner.oracle.trials.values()
    assert trial.status == "COMPLETED"
    assert trial.metrics.exists("val_accuracy")


def test_a_keras_tuner_search_is_not_called_corrupt(digits: Data, tmp_path) -> None:
    """Switching a project run by `keras_tuner.RandomSearch` to metanas with
    ``overwrite=False`` is refused with what happened (keras-tuner's state, not
    a corrupt file), and leaves keras-tuner's files as they were."""
    from metanas.tuners import SavedStateError

    x, y, x_val, y_val = digits
    keras.utils.set_random_seed(0)
    kt_tuner = keras_tuner.RandomSearch(
        compiled_without_metrics, objective="val_loss", max_trials=1, seed=1,
        directory=str(tmp_path), project_name="from_kt")
    kt_tuner.search(x, y, validation_data=(x_val, y_val), epochs=1, verbose=0)
    saved = tmp_path / "from_kt" / "oracle.json"
    before = saved.read_text()
    with pytest.raises(SavedStateError, match="run by a keras-tuner oracle, not a metanas") as info:
        RandomSearch(compiled_without_metrics, objective="val_loss", max_trials=2,
                     directory=str(tmp_path), project_name="from_kt", tracking=False)
    assert "corrupt" not in str(info.value)
    # keras-tuner's own Tuner given a metanas oracle: the same, from the oracle.
    with pytest.raises(SavedStateError, match="EvolutionOracle cannot resume it"):
        keras_tuner.Tuner(
            oracle=EvolutionOracle(objective="val_loss", max_trials=2),
            hypermodel=compiled_without_metrics, directory=str(tmp_path),
            project_name="from_kt")
    assert saved.read_text() == before
