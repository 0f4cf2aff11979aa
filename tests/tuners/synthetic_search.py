"""One process of a synthetic search (chief, worker or single), run by the tests.

Usage: python synthetic_search.py STRATEGY DIRECTORY MAX_TRIALS [--overwrite]

The trials are real keras-tuner trials whose score is a formula (no training),
so the distributed and crash tests exercise keras-tuner's own gRPC and reload
paths quickly. Environment knobs: ``HANG_TRIAL`` (a trial number that hangs,
to be killed), ``HANG_TUNER`` (only that tuner hangs), ``TRIAL_SECONDS``
(time a trial takes), ``HEARTBEAT_TIMEOUT``, ``DIE_AT_BEGIN`` (that tuner
SIGKILLs itself as its first trial begins, before any heartbeat),
``FAIL_TRIALS`` (every trial raises, once ``FAILING_WORKERS`` tuners have one), ``KILL_AFTER_END`` / ``KILL_AFTER_FILE``
(a trial number: the process SIGKILLs itself once, as the strategy is about to
learn from that trial / right after its RUNNING trial file is written),
``ASK_BEST_AFTER`` (a worker asks for the best trial after its search),
``ENDED_GRACE`` (seconds a worker waits on an ended search's marker older than itself),
``PARTIAL_READS`` (trials go through keras-tuner's build and fit, and leave ``edge_5``
unread where ``edge_0`` is "none"), ``WAIT_FOR_WORKERS`` (a worker searches only once
that many workers have started: none misses every trial by starting late on a busy machine),
``EDGES`` (how many hyperparameters the model has, 6 unless told: 1 makes a space of 5).
"""

import os
import pathlib
import signal
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

import keras_tuner  # noqa: E402

from metanas.tuners import distributed  # noqa: E402
from metanas.tuners import (  # noqa: E402
    EvolutionOracle,
    RandomSearchOracle,
    RLControllerOracle,
    StrategyTuner,
)
from tests.tuners.conformance import nas_score  # noqa: E402

STRATEGIES = {
    "random": (RandomSearchOracle, {}),
    "evolution": (EvolutionOracle, {"population_size": 4, "tournament_size": 2}),
    "rl": (RLControllerOracle, {"num_initial_points": 2, "units": 16}),
}


def build(hp):
    for edge in range(int(os.environ.get("EDGES", "6"))):
        hp.Choice(f"edge_{edge}", ["none", "skip", "conv1x1", "conv3x3", "avgpool"])


def kill_once(directory, name):
    """SIGKILLs this process, unless it did so at ``name`` before (a resumed run)."""
    marker = pathlib.Path(directory) / f"killed_{name}"
    if not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)


def with_kills(oracle_class, directory):
    after_end, after_file = os.environ.get("KILL_AFTER_END"), os.environ.get("KILL_AFTER_FILE")

    class Killed(oracle_class):
        def on_trial_result(self, trial):
            if after_end is not None and int(trial.trial_id) == int(after_end):
                kill_once(directory, "after_end")
            super().on_trial_result(trial)

        def _save_trial(self, trial):
            super()._save_trial(trial)
            if (after_file is not None and int(trial.trial_id) == int(after_file)
                    and trial.status == "RUNNING"):
                kill_once(directory, "after_file")

    return Killed


def make_tuner(strategy, directory, max_trials, overwrite):
    oracle_class, settings = STRATEGIES[strategy]
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "single")
    log = pathlib.Path(directory) / f"ran_{tuner_id}.txt"

    class SyntheticSearch(StrategyTuner):
        def on_trial_begin(self, trial):
            if os.environ.get("DIE_AT_BEGIN") == tuner_id:
                (pathlib.Path(directory) / f"died_{tuner_id}_{trial.trial_id}").touch()
                os.kill(os.getpid(), signal.SIGKILL)
            super().on_trial_begin(trial)

        def run_trial(self, trial, *args, **kwargs):
            if os.environ.get("FAIL_TRIALS"):
                # Not before every worker has a trial: a worker still starting
                # when the chief ends would wait for it (keras-tuner's clients
                # cannot tell an ended chief from one not yet started).
                (pathlib.Path(directory) / f"failing_{tuner_id}").touch()
                deadline = time.monotonic() + 120
                while len(list(pathlib.Path(directory).glob("failing_*"))) < int(
                        os.environ.get("FAILING_WORKERS", "1")):
                    assert time.monotonic() < deadline, "the other workers never took a trial"
                    time.sleep(0.1)
                raise RuntimeError("fit exploded")
            if os.environ.get("DIE_AT_BEGIN") and tuner_id != os.environ["DIE_AT_BEGIN"]:
                # Not done before the other worker took a trial and died with it.
                deadline = time.monotonic() + 120
                while not list(pathlib.Path(directory).glob("died_*")):
                    assert time.monotonic() < deadline, "the other worker never died"
                    time.sleep(0.1)
            number = int(trial.trial_id)
            (pathlib.Path(directory) / f"started_{tuner_id}_{trial.trial_id}").touch()
            hang_tuner = os.environ.get("HANG_TUNER")
            if os.environ.get("HANG_TRIAL") == str(number) or (
                hang_tuner == tuner_id and not log.exists()
            ):
                time.sleep(600)  # hangs until the test kills this process
            time.sleep(float(os.environ.get("TRIAL_SECONDS", "0")))
            with open(log, "a") as out:
                out.write(trial.trial_id + "\n")
            if os.environ.get("PARTIAL_READS"):  # through keras-tuner's build and fit
                return self._build_and_fit_model(trial)
            return {"score": nas_score(trial.hyperparameters.values)}

    SyntheticSearch.oracle_class = with_kills(oracle_class, directory)
    return SyntheticSearch(
        hypermodel=PartialReads() if os.environ.get("PARTIAL_READS") else build_model,
        objective=keras_tuner.Objective("score", "max"),
        max_trials=max_trials,
        seed=11,
        heartbeat_timeout=float(os.environ.get("HEARTBEAT_TIMEOUT", "120")),
        directory=directory,
        project_name="search",
        overwrite=overwrite,
        **settings,
    )


def build_model(hp):
    build(hp)
    return None


class PartialReads(keras_tuner.HyperModel):
    """A "model" that reads ``edge_5`` only where ``edge_0`` is not "none"."""

    def build(self, hp):
        if not hp.space:  # keras-tuner's first build, which makes the space
            build(hp)
        edges = {f"edge_{e}": hp.get(f"edge_{e}") for e in range(5)}
        if edges["edge_0"] != "none":
            edges["edge_5"] = hp.get("edge_5")
        import keras

        model = keras.Sequential([keras.Input((1,))])
        model.edges = edges
        return model

    def fit(self, hp, model, *args, **kwargs):
        return {"score": nas_score(model.edges)}


if __name__ == "__main__":
    strategy, directory, max_trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if os.environ.get("ENDED_GRACE"):
        distributed.ENDED_GRACE_SECONDS = float(os.environ["ENDED_GRACE"])
    tuner = make_tuner(strategy, directory, max_trials, overwrite="--overwrite" in sys.argv)
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "")
    if os.environ.get("WAIT_FOR_WORKERS") and tuner_id.startswith("tuner"):
        (pathlib.Path(directory) / f"ready_{tuner_id}").touch()
        deadline = time.monotonic() + 300
        while (len(list(pathlib.Path(directory).glob("ready_tuner*")))
               < int(os.environ["WAIT_FOR_WORKERS"]) and time.monotonic() < deadline):
            time.sleep(0.1)
    tuner.search(verbose=0)
    if os.environ.get("ASK_BEST_AFTER") and "KERASTUNER_TUNER_ID" in os.environ:
        time.sleep(6)  # the chief has ended by now
        started = time.monotonic()
        try:
            tuner.get_best_hyperparameters()
        except RuntimeError as error:
            print(f"ASKED in {time.monotonic() - started:.0f} s: {error}")
