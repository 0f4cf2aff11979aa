"""A multi-input, multi-output AutoKeras AutoModel searched by a metanas strategy.

Inputs: a digit image and four tabular columns; outputs: the digit (classes)
and a number computed from both (regression).

Run:  python examples/autokeras_multi_io.py --tuner evolution --max-trials 15 --epochs 3
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import autokeras as ak  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import metanas.autokeras  # noqa: E402
from _options import TUNERS, parse_args  # noqa: E402


def main():
    args = parse_args(__doc__, max_trials=15, epochs=3, tuners=TUNERS[:3])

    metanas.autokeras.register()
    images, digits = load_digits(return_X_y=True)
    if args.quick:
        images, digits = images[:300], digits[:300]
    images = (images / 16.0).astype("float32").reshape(-1, 8, 8, 1)
    table = np.random.default_rng(0).normal(size=(len(images), 4)).astype("float32")
    value = (table[:, 0] + digits / 10.0).astype("float32")
    split = int(0.8 * len(images))

    image_in, table_in = ak.ImageInput(), ak.StructuredDataInput()
    merged = ak.Merge()([ak.ConvBlock(num_blocks=1)(ak.Normalization()(image_in)),
                         ak.DenseBlock(num_layers=1)(table_in)])
    model = ak.AutoModel(
        inputs=[image_in, table_in],
        outputs=[ak.ClassificationHead(name="digit")(merged),
                 ak.RegressionHead(name="value")(merged)],
        tuner=args.tuner, max_trials=args.max_trials, seed=0,
        directory=args.directory, project_name="digits_multi_io", overwrite=True,
    )
    model.fit([images[:split], table[:split]], [digits[:split], value[:split]],
              epochs=args.epochs, validation_split=0.2, verbose=0)
    print("best test metrics:", np.round(
        model.evaluate([images[split:], table[split:]], [digits[split:], value[split:]],
                       verbose=0), 4))
    digit, number = model.predict([images[split:split + 3], table[split:split + 3]], verbose=0)
    print("predicted digits:", digit.ravel(), "values:", number.ravel())


if __name__ == "__main__":
    main()
