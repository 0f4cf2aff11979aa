"""A meta-trial left running by a killed `meta-train`: its work runs again, and `recommend`
never passes an untested candidate off as tested.

The killed process is simulated in the Optuna storage: a RUNNING meta-trial of
the defaults, with the heartbeat and process record a killed run leaves.
"""

import sqlite3
import subprocess
import sys
import warnings

import optuna
import pytest

from metanas.meta import MetaLearner
from metanas.meta import learner as learner_module
from metanas.meta.learner import PROCESS_KEY, default_recommendation
from tests.meta.test_learner import SMALL, evaluate, noisy

optuna.logging.set_verbosity(optuna.logging.WARNING)
DEFAULTS = default_recommendation("evolution").params
ON_LINUX = learner_module._this_machine() is not None


def running_defaults(path, process=None, heartbeat_age=0):
    """A RUNNING meta-trial of evolution's defaults, as a killed (or live) process leaves it."""
    learner = MetaLearner(f"sqlite:///{path}", seed=0)
    learner.study.enqueue_trial(DEFAULTS)
    with warnings.catch_warnings():  # Optuna's: heartbeats are meant for `optimize`
        warnings.simplefilter("ignore", UserWarning)
        trial = learner.study.ask()  # takes the queued defaults
    storage = learner.study._storage
    storage.record_heartbeat(trial._trial_id)
    if process is not None:
        storage.set_trial_system_attr(trial._trial_id, PROCESS_KEY, process)
    age(path, trial._trial_id, heartbeat_age)
    return trial.number, trial._trial_id


def age(path, trial_id, seconds):
    """Sets the trial's last heartbeat ``seconds`` ago (the database's clock, as Optuna's)."""
    with sqlite3.connect(path) as db:
        db.execute("UPDATE trial_heartbeats SET heartbeat = datetime('now', ?) WHERE trial_id = ?",
                   (f"-{int(seconds)} seconds", trial_id))


def child(alive):
    """A process record (`PROCESS_KEY`) of a child process, killed unless ``alive``."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    record = {"machine": learner_module._this_machine(), "pid": proc.pid,
              "start": learner_module._process_start(proc.pid)[1]}
    if not alive:
        proc.kill()
        proc.wait()  # as a shell reaps the `meta-train` it ran
    return proc, record


def elsewhere():
    return {"machine": ["another-host", "boot", "pid:[1]", "1000"], "pid": 1, "start": 1}


def states(path):
    trials = MetaLearner(f"sqlite:///{path}").study.trials
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    return trials, [t for t in done if learner_module._same_params(t.params, DEFAULTS)]


@pytest.mark.skipif(not ON_LINUX, reason="a process is looked up in /proc")
def test_a_meta_trial_of_a_killed_process_of_this_machine_runs_again_at_once(tmp_path):
    # Killed, and meta-train run again at once: the heartbeat is fresh, the process gone.
    path = tmp_path / "meta.db"
    _, record = child(alive=False)
    number, _ = running_defaults(path, record, heartbeat_age=0)
    learner = MetaLearner(f"sqlite:///{path}", seed=0)
    with pytest.warns(UserWarning, match=rf"meta-trials \[{number}\] were left running by a process"):
        learner.meta_train(SMALL, evaluate, n_trials=2, strategies=("evolution", "random"))
    trials, defaults = states(path)
    assert trials[number].state == optuna.trial.TrialState.FAIL
    assert len(defaults) == 1 and defaults[0].user_attrs["source"] == "meta-train"
    # Each meta-trial records its process, for the next run to look up.
    assert defaults[0].system_attrs[PROCESS_KEY] == learner_module._this_process()


@pytest.mark.skipif(not ON_LINUX, reason="a process is looked up in /proc")
def test_a_meta_trial_of_a_live_process_is_left_to_it(tmp_path):
    # Two processes meta-train on one storage: the other's running defaults count.
    path = tmp_path / "meta.db"
    proc, record = child(alive=True)
    try:
        number, _ = running_defaults(path, record, heartbeat_age=0)
        MetaLearner(f"sqlite:///{path}", seed=0).meta_train(
            SMALL, evaluate, n_trials=1, strategies=("evolution",))
    finally:
        proc.kill()
        proc.wait()
    trials, defaults = states(path)
    assert trials[number].state == optuna.trial.TrialState.RUNNING
    assert not defaults and len(trials) == 2


@pytest.mark.parametrize("silent, rerun", [(30, False), (300, True)])
def test_a_meta_trial_of_another_machine_counts_while_its_heartbeat_does(tmp_path, silent, rerun):
    # Another machine's process cannot be looked up: its heartbeat tells. Silent
    # for SILENT_SECONDS, its settings run again; it is failed only at STALE_SECONDS.
    path = tmp_path / "meta.db"
    number, _ = running_defaults(path, elsewhere(), heartbeat_age=silent)
    MetaLearner(f"sqlite:///{path}", seed=0).meta_train(
        SMALL, evaluate, n_trials=1, strategies=("evolution",))
    trials, defaults = states(path)
    assert trials[number].state == optuna.trial.TrialState.RUNNING
    assert len(defaults) == int(rerun)


def test_defaults_whose_meta_trial_dies_during_meta_training_run_within_it(tmp_path):
    path = tmp_path / "meta.db"
    number, trial_id = running_defaults(path, elsewhere(), heartbeat_age=0)
    calls = []

    def dies_meanwhile(task, strategy, settings, seed):
        if not calls:  # the other machine's process stops beating during the first meta-trial
            age(path, trial_id, learner_module.SILENT_SECONDS + 60)
        calls.append(settings)
        return evaluate(task, strategy, settings, seed)

    learner = MetaLearner(f"sqlite:///{path}", seed=0)
    learner.meta_train(SMALL, dies_meanwhile, n_trials=3, strategies=("evolution",))
    trials, defaults = states(path)
    assert len(trials) == 4 and not learner_module._same_params(trials[number + 1].params, DEFAULTS)
    assert [t.number for t in defaults] == [number + 2]  # the next meta-trial ran them


def test_recommend_does_not_pass_an_untested_candidate_off_as_tested(tmp_path):
    path = tmp_path / "meta.db"
    number, trial_id = running_defaults(path, elsewhere(), heartbeat_age=0)  # killed, or running
    learner = MetaLearner(f"sqlite:///{path}", seed=0)
    learner.meta_train(SMALL, noisy, n_trials=8, seeds=(0, 1, 2),
                       strategies=("evolution", "random"), include_defaults=False)
    untested = learner.recommend(SMALL[0].features, alpha=None)
    assert untested.source.startswith("similar tasks")  # the luckiest of 8
    with pytest.warns(UserWarning, match=rf"evolution defaults have no finished meta-trial on "
                                         rf"small-0, small-1, small-2 \(their meta-trials "
                                         rf"{number} \(RUNNING\) have no result"):
        choice = learner.recommend(SMALL[0].features)
    assert choice.source == ("defaults (candidates untested: the defaults have no finished "
                             "meta-trial on these tasks; similar tasks: small-0, small-1, small-2)")
    assert choice.params == DEFAULTS and choice.expected is None
    # Once they have run, the candidates are tested against them as usual.
    age(path, trial_id, learner_module.SILENT_SECONDS + 60)
    learner.meta_train(SMALL, noisy, n_trials=1, seeds=(0, 1, 2), strategies=("evolution",))
    assert learner.recommend(SMALL[0].features).source.startswith(
        "defaults (no candidate beats them beyond noise")


def test_defaults_whose_meta_trial_fails_do_not_take_the_whole_budget(tmp_path):
    defaults = default_recommendation("evolution").settings

    def fails_on_the_defaults(task, strategy, settings, seed):
        return float("nan") if settings == defaults else evaluate(task, strategy, settings, seed)

    learner = MetaLearner(f"sqlite:///{tmp_path / 'meta.db'}", seed=0)
    learner.meta_train(SMALL, fails_on_the_defaults, n_trials=5, strategies=("evolution",))
    trials = learner.study.trials
    ran_defaults = [t for t in trials if learner_module._same_params(t.params, DEFAULTS)]
    assert len(trials) == 5
    # Queued at the start, and once more after their meta-trial failed: not 5 times.
    assert len(ran_defaults) == 2
    assert all(t.state == optuna.trial.TrialState.FAIL for t in ran_defaults)


@pytest.mark.skipif(not ON_LINUX, reason="a process is looked up in /proc")
def test_meta_train_prints_its_warnings_as_one_cli_line(tmp_path, capsys):
    from metanas import cli

    path = tmp_path / "meta.db"
    _, record = child(alive=False)
    number, _ = running_defaults(path, record, heartbeat_age=0)
    argv = ["meta-train", "--tasks", "hpobench/car", "--strategies", "evolution", "--budget",
            "4", "--meta-trials", "1", "--storage", f"sqlite:///{path}", "--no-progress"]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().err.splitlines()
    ours = [line for line in lines if f"meta-trials [{number}]" in line]
    assert len(ours) == 1, lines
    assert ours[0].startswith("metanas meta-train: warning: meta-trials [")
    assert not any("UserWarning" in line or "warnings.warn" in line for line in lines), lines


def test_a_meta_trial_killed_between_ask_and_its_first_step_is_failed_and_runs_again(
        tmp_path, monkeypatch):
    # Was RUNNING for good: no process record, no heartbeat, so nothing failed it,
    # and the defaults it held counted as running elsewhere (a review's kill test).
    path = tmp_path / "meta.db"
    learner = MetaLearner(f"sqlite:///{path}", seed=0)
    learner.study.enqueue_trial(DEFAULTS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        number = learner.study.ask().number  # and killed there
    monkeypatch.setattr(learner_module, "ORPHAN_SECONDS", 0, raising=False)  # (600 s on)
    with pytest.warns(UserWarning, match=rf"meta-trials \[{number}\] were left running"):
        MetaLearner(f"sqlite:///{path}", seed=0).meta_train(
            SMALL, evaluate, n_trials=1, strategies=("evolution",))
    trials, defaults = states(path)
    assert trials[number].state == optuna.trial.TrialState.FAIL
    assert len(trials) == 2 and [t.number for t in defaults] == [number + 1]


def test_an_orphan_younger_than_a_live_process_needs_is_left_running(tmp_path):
    path = tmp_path / "meta.db"
    learner = MetaLearner(f"sqlite:///{path}", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        number = learner.study.ask().number  # its process may record itself any moment
    learner.meta_train(SMALL, evaluate, n_trials=1, strategies=("evolution",))
    assert MetaLearner(f"sqlite:///{path}").study.trials[number].state == (
        optuna.trial.TrialState.RUNNING)


@pytest.mark.skipif(not ON_LINUX, reason="a process is looked up in /proc")
def test_a_queued_meta_trial_killed_amid_its_suggestions_runs_again_whole_and_once(tmp_path):
    # Was: a retry with only the settings suggested before the kill fixed (the rest
    # drawn anew, under the defaults' name), beside the defaults queued again.
    path = tmp_path / "meta.db"
    learner = MetaLearner(f"sqlite:///{path}", seed=0)
    learner.study.enqueue_trial(DEFAULTS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        trial = learner.study.ask()
    trial.suggest_categorical("strategy", ["evolution", "random"])  # killed after one
    _, record = child(alive=False)
    learner.study._storage.set_trial_system_attr(trial._trial_id, PROCESS_KEY, record)
    with pytest.warns(UserWarning, match=rf"meta-trials \[{trial.number}\] were left running"):
        MetaLearner(f"sqlite:///{path}", seed=0).meta_train(
            SMALL, evaluate, n_trials=2, strategies=("evolution", "random"))
    trials, defaults = states(path)
    assert trials[trial.number].state == optuna.trial.TrialState.FAIL
    assert len(defaults) == 1 and len(trials) == 3
    assert not [t.number for t in trials if learner_module.RETRY_KEY in t.user_attrs]
