"""The demo search: evolution over a small Keras model on scikit-learn's digits."""

from __future__ import annotations

from typing import Any, Dict

import keras
import numpy as np

from metanas.tuners import EvolutionSearch


def load_digits_split(seed: int = 0):
    """Digits (8x8 images, 10 classes) scaled to [0, 1], split 80/20, seeded."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    cut = int(0.8 * len(x))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def build_mlp(hp) -> keras.Model:
    """A dense network whose depth, widths, activation and dropout are searched."""
    model = keras.Sequential([keras.Input(shape=(64,))])
    for i in range(hp.Int("layers", 1, 3)):
        model.add(
            keras.layers.Dense(
                hp.Choice(f"units_{i}", [16, 32, 64, 128]),
                activation=hp.Choice("activation", ["relu", "tanh", "elu"]),
            )
        )
        model.add(keras.layers.Dropout(hp.Float("dropout", 0.0, 0.5, step=0.1)))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-2, sampling="log")),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def run_demo(
    *, max_trials: int = 12, epochs: int = 8, seed: int = 1,
    directory: str = "demo_runs", overwrite: bool = True,
) -> Dict[str, Any]:
    """Runs the demo search and prints the best configuration and its score."""
    keras.utils.set_random_seed(seed)
    (x, y), (x_val, y_val) = load_digits_split(seed)
    tuner = EvolutionSearch(
        build_mlp,
        objective="val_accuracy",
        max_trials=max_trials,
        population_size=6,
        tournament_size=3,
        seed=seed,
        directory=directory,
        project_name="digits_evolution",
        overwrite=overwrite,
    )
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=epochs, batch_size=64, verbose=0)
    best = tuner.oracle.get_best_trials(1)[0]
    scores = tuner.oracle.evaluations_of(best.trial_id)  # the race trains the best again
    score = float(np.mean(scores))
    print(f"best val_accuracy: {score:.4f} (" + (
        f"mean of {len(scores)} trainings, " if len(scores) > 1 else "")
        + f"trial {best.trial_id} of {len(tuner.oracle.trials)})")
    print("best configuration:")
    unread = tuner.oracle.unused_names(best.trial_id)  # e.g. units_2 of a 2-layer model
    for name, value in best.hyperparameters.values.items():
        if name not in unread:
            print(f"  {name} = {value}")
    return {"score": score, "values": {k: v for k, v in best.hyperparameters.values.items()
                                       if k not in unread}}
