"""AutoKeras ImageClassifier / ImageRegressor searched by a metanas strategy (digits).

The image block is fixed to AutoKeras's small "vanilla" CNN: unrestricted,
AutoKeras soon proposes ResNet/EfficientNet blocks that resize the 8x8 digits
to 224x224 (minutes and gigabytes per trial on a CPU).

Run:  python examples/autokeras_image.py --tuner evolution --max-trials 15 --epochs 5
      python examples/autokeras_image.py --task regressor --tuner rl
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import autokeras as ak  # noqa: E402
import keras_tuner  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import metanas.autokeras  # noqa: E402
from _options import parse_args  # noqa: E402


def main():
    args = parse_args(__doc__, max_trials=15, epochs=5, tasks=True)

    metanas.autokeras.register()  # adds "evolution", "rl", "metanas-random", "meta"
    x, y = load_digits(return_X_y=True)
    if args.quick:
        x, y = x[:300], y[:300]
    x = (x / 16.0).astype("float32").reshape(-1, 8, 8, 1)
    if args.task == "regressor":
        y = y.astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)

    hp = keras_tuner.HyperParameters()
    hp.Fixed("image_block_1/block_type", "vanilla")
    task = ak.ImageClassifier if args.task == "classifier" else ak.ImageRegressor
    model = task(
        tuner=args.tuner,
        hyperparameters=hp,
        max_trials=args.max_trials,
        seed=0,
        directory=args.directory,
        project_name=f"digits_{args.task}",
        overwrite=True,
    )
    model.fit(x_train, y_train, epochs=args.epochs, validation_split=0.2, verbose=0)
    print(f"best test {'loss and accuracy' if args.task == 'classifier' else 'loss and mse'}:",
          np.round(model.evaluate(x_test, y_test, verbose=0), 4))
    model.export_model().summary()


if __name__ == "__main__":
    main()
