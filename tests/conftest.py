"""Test set-up: quiet TensorFlow (before anything imports it) and seed helpers."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# Every metanas tuner tracks to MLflow by default: send the suite's runs to a
# throw-away store instead of ./mlflow.db and ./mlruns in the repository.
if "MLFLOW_TRACKING_URI" not in os.environ:
    import tempfile

    _MLFLOW_DIR = tempfile.mkdtemp(prefix="metanas-test-mlflow-")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_MLFLOW_DIR}/mlflow.db"
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no network at test time
