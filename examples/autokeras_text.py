"""AutoKeras TextClassifier / TextRegressor searched by a metanas strategy.

The text set is made here: short reviews whose label (or score) follows the
share of positive words, so no download is needed.

Run:  python examples/autokeras_text.py --tuner evolution --max-trials 15 --epochs 3
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import autokeras as ak  # noqa: E402
import keras_tuner  # noqa: E402
import numpy as np  # noqa: E402

import metanas.autokeras  # noqa: E402
from _options import parse_args  # noqa: E402

POSITIVE = ["good", "great", "lovely", "fine", "superb", "nice", "fun", "clever"]
NEGATIVE = ["bad", "awful", "dull", "poor", "boring", "weak", "sad", "clumsy"]
FILLER = ["the", "film", "plot", "was", "acting", "and", "very", "a", "story"]


def make_reviews(n, rng):
    """Reviews of 12 words; the score is the share of positive opinion words."""
    share = rng.random(n)
    texts = []
    for p in share:
        opinions = [rng.choice(POSITIVE) if rng.random() < p else rng.choice(NEGATIVE)
                    for _ in range(6)]
        words = opinions + list(rng.choice(FILLER, 6))
        rng.shuffle(words)
        texts.append(" ".join(words))
    return np.array(texts), share.astype("float32")


def main():
    args = parse_args(__doc__, max_trials=15, epochs=3, tasks=True)

    metanas.autokeras.register()
    rng = np.random.default_rng(0)
    x, score = make_reviews(300 if args.quick else 1000, rng)
    y = (score > 0.5).astype("int64") if args.task == "classifier" else score

    # Small vocabularies and embeddings keep each trial a few seconds.
    hp = keras_tuner.HyperParameters()
    hp.Choice("text_block_1/max_tokens", [100, 500])
    hp.Choice("text_block_1/embedding_1/embedding_dim", [16, 32])
    task = ak.TextClassifier if args.task == "classifier" else ak.TextRegressor
    model = task(tuner=args.tuner, hyperparameters=hp, max_trials=args.max_trials, seed=0,
                 directory=args.directory, project_name=f"reviews_{args.task}", overwrite=True)
    split = int(0.8 * len(x))
    model.fit(x[:split], y[:split], epochs=args.epochs, validation_split=0.2, verbose=0)
    print("best test metrics:", np.round(model.evaluate(x[split:], y[split:], verbose=0), 4))
    print("predictions:", model.predict(x[split:split + 3], verbose=0).ravel())


if __name__ == "__main__":
    main()
