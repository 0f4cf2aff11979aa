"""Evolution search of a small convolutional network on scikit-learn's digits.

Run:  python examples/kerastuner_evolution.py --max-trials 20 --epochs 5
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from metanas.tuners import EvolutionSearch  # noqa: E402


def build_model(hp):
    inputs = keras.Input(shape=(8, 8, 1))
    x = inputs
    for i in range(hp.Int("conv_layers", 1, 2)):
        x = keras.layers.Conv2D(
            hp.Choice(f"filters_{i}", [8, 16, 32]),
            kernel_size=hp.Choice(f"kernel_{i}", [1, 3]),
            padding="same",
            activation=hp.Choice("activation", ["relu", "elu"]),
        )(x)
    if hp.Boolean("pool"):
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(hp.Float("dropout", 0.0, 0.4, step=0.1))(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("lr", 3e-4, 3e-2, sampling="log")),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--directory", default="example_runs")
    args = parser.parse_args()

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32").reshape(-1, 8, 8, 1)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.2, random_state=0)
    keras.utils.set_random_seed(0)

    tuner = EvolutionSearch(
        build_model,
        objective="val_accuracy",
        max_trials=args.max_trials,
        population_size=8,
        selection="tournament",  # or "roulette"
        tournament_size=3,
        mutation_rate=0.2,
        crossover_rate=0.3,
        aging=True,  # regularized evolution
        seed=0,
        directory=args.directory,
        project_name="digits_evolution",
        overwrite=True,
    )
    tuner.search(x_train, y_train, validation_data=(x_val, y_val), epochs=args.epochs, verbose=0)
    tuner.results_summary(num_trials=3)
    best = tuner.get_best_models(1)[0]
    accuracy = np.mean(best.predict(x_val, verbose=0).argmax(1) == y_val)
    print(f"best model validation accuracy: {accuracy:.4f}")


if __name__ == "__main__":
    main()
