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

# keras-tuner runs a full `gc.collect()` before every model build (and keras's
# `clear_session` another), and each one walks every object TensorFlow, keras,
# MLflow and AutoKeras created at import: ~0.25 s a call, half a second a
# trial. Objects alive when a test module starts are moved out of the
# collector's sight (`gc.freeze`); what the tests themselves create is
# collected as before. Unfreezing first, at each module, lets the previous
# module's leftovers be collected then: nothing frozen leaks for good.
# Frozen objects are invisible to gc.get_objects() and gc.get_referrers(): a
# test that looks for what keeps an object alive must unfreeze first.
import gc  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _freeze_what_is_already_alive():
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    yield
