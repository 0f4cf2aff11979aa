"""Test set-up: quiet TensorFlow (before anything imports it) and seed helpers."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# Every metanas tuner tracks to MLflow by default: send the suite's runs to a
# throw-away store instead of ./mlflow.db and ./mlruns in the repository, one
# per test process (pytest-xdist's workers inherit the controller's
# environment, and two processes writing one SQLite file can hit "database is
# locked"). A store the user set is kept.
_OURS = "METANAS_TEST_MLFLOW_URI"
if "MLFLOW_TRACKING_URI" not in os.environ or (
    os.environ.get(_OURS) == os.environ["MLFLOW_TRACKING_URI"]
):
    import tempfile

    _MLFLOW_DIR = tempfile.mkdtemp(
        prefix=f"metanas-test-mlflow-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-")
    os.environ["MLFLOW_TRACKING_URI"] = os.environ[_OURS] = f"sqlite:///{_MLFLOW_DIR}/mlflow.db"
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no network at test time
