"""MLflow tracking of a real (tiny) AutoKeras search run by a metanas tuner."""

import autokeras as ak
import keras
import numpy as np
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_wine

from metanas.autokeras import EvolutionTuner
from metanas.tracking import MlflowTracker
from tests.tracking.helpers import runs_of


def test_autokeras_search_is_one_parent_with_one_child_per_trial(tmp_path):
    x, y = load_wine(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order].astype("float32"), y[order]
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    model = ak.StructuredDataClassifier(
        tuner=EvolutionTuner, max_trials=3, seed=2, directory=tmp_path, overwrite=True,
        project_name="wine", population_size=2, tracking=MlflowTracker(tracking_uri=uri),
    )
    model.fit(x[:130], y[:130], validation_data=(x[130:], y[130:]), epochs=2,
              callbacks=[keras.callbacks.EarlyStopping(patience=1)], verbose=0)

    trials = model.tuner.oracle.trials
    parents, children = runs_of(uri, "wine")
    assert len(parents) == 1 and parents[0].data.params["strategy"] == "evolution"
    assert sorted(c.data.tags["metanas.trial_id"] for c in children) == sorted(trials)
    client = MlflowClient(tracking_uri=uri)
    for child in children:
        trial = trials[child.data.tags["metanas.trial_id"]]
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert child.data.params == {k: str(v) for k, v in trial.hyperparameters.values.items()}
        assert child.data.tags["metanas.status"] == trial.status == "COMPLETED"
        epochs = [m.step for m in client.get_metric_history(child.info.run_id, "val_loss")]
        assert 1 <= len(epochs) <= 2 and epochs == list(range(len(epochs)))
        assert child.data.metrics["objective"] == float(trial.score)
    assert parents[0].data.metrics["best_so_far"] == max(t.score for t in trials.values())
