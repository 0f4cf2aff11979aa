"""AutoKeras StructuredDataClassifier / Regressor searched by a metanas strategy.

Classifier: scikit-learn's wine (3 classes); regressor: its diabetes set.

Run:  python examples/autokeras_structured.py --tuner rl --max-trials 15 --epochs 10
      python examples/autokeras_structured.py --task regressor --tuner evolution
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import autokeras as ak  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_diabetes, load_wine  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from _options import parse_args  # noqa: E402
from metanas.autokeras import EvolutionTuner, MetaTuner, RandomTuner, RLControllerTuner  # noqa: E402

TUNERS = {"evolution": EvolutionTuner, "rl": RLControllerTuner,
          "metanas-random": RandomTuner, "meta": MetaTuner}


def main():
    args = parse_args(__doc__, max_trials=15, epochs=10, tasks=True, tuners=sorted(TUNERS))

    loader = load_wine if args.task == "classifier" else load_diabetes
    x, y = loader(return_X_y=True)
    if args.quick:
        x, y = x[:150], y[:150]
    x = x.astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)
    task = ak.StructuredDataClassifier if args.task == "classifier" else ak.StructuredDataRegressor
    # The tuner class itself works too, no register() needed; strategy
    # settings pass through AutoKeras's keyword arguments.
    settings = {"evolution": {"population_size": 6}, "rl": {"num_initial_points": 3}}
    model = task(tuner=TUNERS[args.tuner], max_trials=args.max_trials, seed=0,
                 directory=args.directory, project_name=f"tabular_{args.task}",
                 overwrite=True, **settings.get(args.tuner, {}))
    model.fit(x_train, y_train, epochs=args.epochs, validation_split=0.2, verbose=0)
    print("best test metrics:", np.round(model.evaluate(x_test, y_test, verbose=0), 4))


if __name__ == "__main__":
    main()
