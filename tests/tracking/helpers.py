"""Shared pieces of the tracking tests: a tiny faulty hypermodel, MLflow queries, a full disk."""

from __future__ import annotations

import builtins
import errno
import os

import keras
import keras_tuner
import numpy as np
from mlflow.tracking import MlflowClient

X = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
Y = (X[:, 0] > 0).astype("int32")


class TinyModel(keras_tuner.HyperModel):
    """A tiny classifier; ``fault`` = "build", "nan" or "fit" makes its trial fail."""

    def build(self, hp):
        fault = hp.Choice("fault", ["none", "build", "nan", "fit"])
        if fault == "build":
            raise RuntimeError("injected: the model cannot be built")
        inputs = keras.Input(shape=(4,))
        hidden = keras.layers.Dense(hp.Choice("units", [2, 4, 8]), activation="relu")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden))
        model.compile(
            # A huge learning rate diverges to a NaN loss.
            keras.optimizers.SGD(1e30 if fault == "nan" else hp.Float("lr", 1e-3, 1e-1, sampling="log")),
            "sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    def fit(self, hp, model, *args, **kwargs):
        if hp.values["fault"] == "fit":
            raise RuntimeError("injected: training crashed")
        return model.fit(*args, **kwargs)


def runs_of(uri: str, experiment: str):
    """(parent runs, child runs) of ``experiment`` in the store at ``uri``."""
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r} in the store"
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("metanas.role") == "search"]
    children = [r for r in runs if r.data.tags.get("metanas.role") == "trial"]
    return parents, children


def check_search_logged(uri, experiment, tuner, epochs):
    """Asserts one parent and exactly one right child per trial of ``tuner``; returns them."""
    client = MlflowClient(tracking_uri=uri)
    parents, children = runs_of(uri, experiment)
    assert len(parents) == 1, [p.info.run_name for p in parents]
    parent = parents[0]
    trials = tuner.oracle.trials
    by_trial = {}
    for child in children:
        by_trial.setdefault(child.data.tags["metanas.trial_id"], []).append(child)
    assert sorted(by_trial) == sorted(trials), "one child run per trial, no more, no less"
    assert all(len(runs) == 1 for runs in by_trial.values()), "a trial was logged twice"
    for trial_id, (child,) in by_trial.items():
        trial = trials[trial_id]
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.run_name.endswith(f"-trial-{trial_id}")
        assert child.data.params == {k: str(v) for k, v in trial.hyperparameters.values.items()}
        assert child.data.tags["metanas.status"] == trial.status
        if trial.status == "COMPLETED":
            assert child.info.status == "FINISHED"
            history = client.get_metric_history(child.info.run_id, "loss")
            assert [m.step for m in history] == list(range(epochs))
            assert child.data.metrics["objective"] == float(trial.score)
            assert child.data.metrics["duration_s"] > 0
        else:
            assert child.info.status == "FAILED" and "objective" not in child.data.metrics
            if trial.hyperparameters.values["fault"] == "nan":
                assert "nan" in child.data.tags["error"].lower()
            else:
                assert "injected" in child.data.tags["error"]
    return parent, by_trial


class FullDisk:
    """A file whose disk fills up: the next write takes half its data, then ENOSPC."""

    def __init__(self, handle):
        self._handle = handle

    def write(self, data):
        self._handle.write(data[: len(data) // 2])
        self._handle.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._handle.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self._handle, name)


def fill_disk_once(monkeypatch, modules, name_part):
    """The next file opened for writing (through ``open`` in ``modules``) whose name
    holds ``name_part`` hits a full disk."""
    real_open = builtins.open
    armed = {"left": 1}

    def open_(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if armed["left"] and name_part in os.path.basename(str(file)) and set(mode) & set("wa"):
            armed["left"] -= 1
            return FullDisk(handle)
        return handle

    for module in modules:
        monkeypatch.setattr(module, "open", open_, raising=False)
