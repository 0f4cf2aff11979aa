"""One process of an AutoKeras search in keras-tuner's chief/worker mode.

Run by tests/autokeras/test_distributed.py with KERASTUNER_* set. Prints
``FINAL_FIT <tuner id>`` when AutoKeras trains the final model and, after
``fit``, ``FIT_RETURNED <tuner id> <whether it returned a history>``; the
chief also prints ``EXPORTED <classes> classes`` from its exported model.
"""

import gc
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import autokeras as ak  # noqa: E402
import numpy as np  # noqa: E402
from autokeras.engine import tuner as ak_tuner  # noqa: E402
from sklearn.datasets import load_wine  # noqa: E402

from metanas.autokeras import EvolutionTuner  # noqa: E402

directory, max_trials = sys.argv[1], int(sys.argv[2])
tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "single")

final_fit = ak_tuner.AutoTuner.final_fit


def announced_final_fit(self, **kwargs):
    print(f"FINAL_FIT {tuner_id}", flush=True)
    return final_fit(self, **kwargs)


ak_tuner.AutoTuner.final_fit = announced_final_fit

x, y = load_wine(return_X_y=True)
order = np.random.default_rng(0).permutation(len(x))
x = ((x - x.mean(0)) / x.std(0)).astype("float32")[order]
y = y[order]
model = ak.StructuredDataClassifier(
    tuner=EvolutionTuner, max_trials=max_trials, seed=3, directory=directory,
    project_name="search", overwrite=True, population_size=2, tracking=False,
)
# The collection before each build need not walk what exists before fit (the
# imports' objects, the data, the classifier).
gc.freeze()
history = model.fit(x[:120], y[:120], validation_split=0.25, epochs=1, verbose=0)
print(f"FIT_RETURNED {tuner_id} {history is not None}", flush=True)
if tuner_id == "chief":
    print(f"EXPORTED {int(model.export_model().output_shape[-1])} classes", flush=True)
    print(f"PREDICTED {model.predict(x[:4], verbose=0).shape}", flush=True)
