"""NAS-Bench-201-style cell search on digits, as an AutoKeras AutoModel.

`CellBlock` searches one DAG cell (every edge: none, skip, 1x1 conv, 3x3 conv
or 3x3 average pool), stacked in stages with reductions; each decision is a
hyperparameter named ``cell_block_1/edge_{i}_{j}``. The same space is
`metanas.spaces.CellSpace` for plain KerasTuner.

Run:  python examples/autokeras_cell_space.py --tuner evolution --max-trials 20 --epochs 5
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import autokeras as ak  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import metanas.autokeras  # noqa: E402
from _options import TUNERS, parse_args  # noqa: E402
from metanas.spaces import CellBlock, cell_edges  # noqa: E402


def main():
    args = parse_args(__doc__, max_trials=20, epochs=5, tuners=TUNERS[:3])

    metanas.autokeras.register()
    x, y = load_digits(return_X_y=True)
    if args.quick:
        x, y = x[:300], y[:300]
    x = (x / 16.0).astype("float32").reshape(-1, 8, 8, 1)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)

    inputs = ak.ImageInput()
    cells = 1 if args.quick else 2
    features = CellBlock(num_nodes=4, num_stages=2, max_cells_per_stage=cells, filters=[8, 16])(
        ak.Normalization()(inputs))
    outputs = ak.ClassificationHead()(ak.SpatialReduction(reduction_type="global_avg")(features))
    model = ak.AutoModel(inputs, outputs, tuner=args.tuner, max_trials=args.max_trials,
                         objective="val_accuracy", seed=0, directory=args.directory,
                         project_name="digits_cells", overwrite=True)
    model.fit(x_train, y_train, epochs=args.epochs, validation_split=0.2, verbose=0)

    best = model.tuner.oracle.get_best_trials(1)[0].hyperparameters.values
    cell = {f"{i}->{j}": best[f"cell_block_1/edge_{i}_{j}"] for i, j in cell_edges(4)}
    print("best cell:", cell, "cells per stage:", best["cell_block_1/cells_per_stage"])
    print("best test loss and accuracy:", np.round(model.evaluate(x_test, y_test, verbose=0), 4))


if __name__ == "__main__":
    main()
