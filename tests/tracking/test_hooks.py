"""The hook interface between tuners and trackers, and credential redaction."""

import subprocess
import sys

import pytest

from metanas.security import redact, sqlite_file
from metanas.tuners import RandomSearch
from metanas.tuners.hooks import SearchHook
from tests.tracking.helpers import X, Y, TinyModel


class Recorder(SearchHook):
    """A tracker of one's own: records the events it is given."""

    def __init__(self):
        self.events = []

    def on_search_begin(self, tuner):
        self.events.append(("search_begin",))

    def on_trial_begin(self, tuner, trial):
        self.events.append(("trial_begin", trial.trial_id))

    def on_epoch_end(self, tuner, trial, model, epoch, logs):
        self.events.append(("epoch", trial.trial_id, epoch, sorted(logs)))

    def on_trial_end(self, tuner, trial):
        self.events.append(("trial_end", trial.trial_id, trial.status))

    def on_search_end(self, tuner):
        self.events.append(("search_end",))


def test_a_tracker_object_gets_every_event_in_order(tmp_path):
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    hp.Fixed("fault", "none")
    recorder = Recorder()
    tuner = RandomSearch(
        TinyModel(), objective="loss", max_trials=2, seed=3, directory=str(tmp_path),
        project_name="hooks", hyperparameters=hp, tracking=recorder,
    )
    tuner.search(X, Y, epochs=2, verbose=0)
    assert tuner.tracker is recorder
    kinds = [e[0] for e in recorder.events]
    assert kinds == ["search_begin"] + ["trial_begin", "epoch", "epoch", "trial_end"] * 2 + [
        "search_end"
    ]
    epochs = [e for e in recorder.events if e[0] == "epoch"]
    assert [e[2] for e in epochs] == [0, 1, 0, 1]
    assert all({"loss", "accuracy"} <= set(e[3]) for e in epochs)
    assert [e[2] for e in recorder.events if e[0] == "trial_end"] == ["COMPLETED", "COMPLETED"]


def test_a_failing_tracker_never_stops_the_search(tmp_path, caplog):
    import keras_tuner

    class Broken(SearchHook):
        def on_trial_end(self, tuner, trial):
            raise RuntimeError("tracker bug")

    hp = keras_tuner.HyperParameters()
    hp.Fixed("fault", "none")
    tuner = RandomSearch(
        TinyModel(), objective="loss", max_trials=2, seed=3, directory=str(tmp_path),
        project_name="broken", hyperparameters=hp, tracking=Broken(),
    )
    tuner.search(X, Y, epochs=1, verbose=0)
    assert [t.status for t in tuner.oracle.trials.values()] == ["COMPLETED", "COMPLETED"]
    assert "tracker bug" in caplog.text


def test_untracked_tuners_never_import_mlflow():
    code = (
        "import sys\n"
        "from metanas.tuners import EvolutionSearch\n"
        "EvolutionSearch(lambda hp: None, objective='loss', tracking=False,"
        " directory=sys.argv[1])\n"
        "print('mlflow' in sys.modules)\n"
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run([sys.executable, "-c", code, tmp], capture_output=True,
                                text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("http://bob:hunter2@host:5000", "http://bob:***@host:5000"),
        ("postgresql://u:p%40ss@db/mlflow?sslmode=require", "postgresql://u:***@db/mlflow?sslmode=require"),
        ("https://host/api?token=abc123&x=1", "https://host/api?token=***&x=1"),
        ("error talking to http://a:b@h:1/x: refused", "error talking to http://a:***@h:1/x: refused"),
        ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
        ("http://host:5000", "http://host:5000"),
        ("https://ghp_token123@mlflow.example:443/x", "https://***@mlflow.example:443/x"),
        ("postgresql://bob@db/mlflow", "postgresql://bob@db/mlflow"),
    ],
)
def test_redact_hides_credentials_in_urls(text, expected):
    assert redact(text) == expected


def test_sqlite_file_is_the_absolute_database_path_or_none(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sqlite_file("sqlite:///meta.db?timeout=5") == str(tmp_path / "meta.db")
    assert sqlite_file("sqlite:////data/m.db") == "/data/m.db"
    for url in ("sqlite:///", "sqlite:///:memory:", "postgresql://u@h/db", "file:///x.db"):
        assert sqlite_file(url) is None


def test_the_mixin_tracks_any_keras_tuner_tuner(tmp_path):
    """What an AutoKeras tuner gets: HookedTunerMixin before a keras-tuner Tuner class."""
    import keras_tuner

    from metanas.tuners.hooks import HookedTunerMixin

    class TrackedRandomSearch(HookedTunerMixin, keras_tuner.RandomSearch):
        pass

    hp = keras_tuner.HyperParameters()
    hp.Fixed("fault", "none")
    recorder = Recorder()
    tuner = TrackedRandomSearch(
        hypermodel=TinyModel(), objective="loss", max_trials=1, seed=3, hyperparameters=hp,
        directory=str(tmp_path), project_name="plain", tracking=recorder,
    )
    tuner.search(X, Y, epochs=1, verbose=0)
    assert [e[0] for e in recorder.events] == [
        "search_begin", "trial_begin", "epoch", "trial_end", "search_end"
    ]
    with pytest.raises(ValueError, match="tracking must be True, False or a tracker"):
        TrackedRandomSearch(hypermodel=TinyModel(), objective="loss", tracking=1,
                            directory=str(tmp_path))


@pytest.mark.parametrize(
    "class_name, expected",
    [("EvolutionOracle", "evolution"), ("RandomSearchOracle", "random-search"),
     ("RLControllerOracle", "rl-controller"), ("GreedyOracle", "greedy")],
)
def test_strategy_names_are_readable(class_name, expected):
    from metanas.tracking import strategy_name

    assert strategy_name(type(class_name, (), {})()) == expected
