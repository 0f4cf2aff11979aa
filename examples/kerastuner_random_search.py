"""Random search (never repeating a configuration) of a dense network on digits.

Run:  python examples/kerastuner_random_search.py --max-trials 20 --epochs 5
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from metanas.tuners import RandomSearch  # noqa: E402


def build_model(hp):
    model = keras.Sequential([keras.Input(shape=(64,))])
    model.add(keras.layers.Dense(hp.Int("units", 16, 256, step=16), activation="relu"))
    if hp.Boolean("second_layer"):
        with hp.conditional_scope("second_layer", [True]):
            model.add(keras.layers.Dense(hp.Int("units_2", 16, 128, step=16), activation="relu"))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-2, sampling="log")),
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
    x = (x / 16.0).astype("float32")
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.2, random_state=0)
    keras.utils.set_random_seed(0)

    tuner = RandomSearch(
        build_model,
        objective="val_accuracy",
        max_trials=args.max_trials,
        seed=0,
        directory=args.directory,
        project_name="digits_random",
        overwrite=True,
    )
    tuner.search(x_train, y_train, validation_data=(x_val, y_val), epochs=args.epochs, verbose=0)
    tuner.results_summary(num_trials=3)
    print("best hyperparameters:", tuner.get_best_hyperparameters()[0].values)


if __name__ == "__main__":
    main()
