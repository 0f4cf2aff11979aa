"""keras-tuner's chief/worker mode over gRPC on 127.0.0.1, and hard kills.

Every process is a real keras-tuner Tuner (tests/tuners/synthetic_search.py);
trials score a formula instead of training so that the tests stay quick.
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest

from metanas.tuners import EvolutionOracle, distributed

SCRIPT = pathlib.Path(__file__).with_name("synthetic_search.py")
pytestmark = pytest.mark.slow


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(strategy, directory, max_trials, *, tuner_id=None, port=None, overwrite=True,
          script=SCRIPT, **env):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")}
    environ.update({k: str(v) for k, v in env.items()})
    if tuner_id is not None:
        environ.update(
            KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP="127.0.0.1",
            KERASTUNER_ORACLE_PORT=str(port),
        )
    argv = [sys.executable, str(script)] + ([strategy] if strategy else [])
    argv += [str(directory), str(max_trials)]
    return subprocess.Popen(
        argv + (["--overwrite"] if overwrite else []), env=environ,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def wait(process, timeout=240):
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"process did not finish in {timeout} s:\n{output[-3000:]}")
    return process.returncode, output


def wait_for(path_glob, directory, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(pathlib.Path(directory).glob(path_glob))
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"nothing matched {path_glob} in {timeout} s")


def trials_on_disk(directory):
    trials = {}
    for path in pathlib.Path(directory, "search").glob("trial_*/trial.json"):
        trial = json.loads(path.read_text())
        trials[trial["trial_id"]] = trial
    return trials


def runs_by_tuner(directory):
    return {
        path.stem[len("ran_"):]: path.read_text().split()
        for path in pathlib.Path(directory).glob("ran_*.txt")
    }


def check_complete(directory, max_trials):
    trials = trials_on_disk(directory)
    assert len(trials) == max_trials
    assert all(t["status"] == "COMPLETED" for t in trials.values()), [
        (t["trial_id"], t["status"]) for t in trials.values()
    ]
    values = [json.dumps(t["hyperparameters"]["values"], sort_keys=True) for t in trials.values()]
    oracle = json.loads(pathlib.Path(directory, "search", "oracle.json").read_text())
    # Evolution's final race re-evaluates its finalists (racing_fraction of
    # max_trials); no other trial repeats a configuration.
    race = int(EvolutionOracle.default_racing_fraction * max_trials) if oracle["race"] else 0
    assert len(set(values)) == max_trials - race, "a configuration was proposed twice"
    assert sorted(oracle["end_order"]) == sorted(trials), "the oracle missed a result"
    return trials, oracle


def run_cluster(strategy, directory, max_trials, workers=3, kill=None, **env):
    port = free_port()
    chief = start(strategy, directory, max_trials, tuner_id="chief", port=port, **env)
    procs = {
        f"tuner{i}": start(strategy, directory, max_trials, tuner_id=f"tuner{i}", port=port, **env)
        for i in range(workers)
    }
    killed_at = None
    if kill is not None:
        wait_for(f"started_{kill}_*", directory)
        os.killpg(procs[kill].pid, signal.SIGKILL)
        killed_at = time.monotonic()
    outputs = {}
    for name, process in procs.items():
        code, outputs[name] = wait(process)
        if name != kill:
            assert code == 0, outputs[name][-3000:]
    code, outputs["chief"] = wait(chief, timeout=60)
    assert code == 0, outputs["chief"][-3000:]
    return outputs, killed_at


# (Random search's path through the chief is the base oracle's, as evolution's.)
@pytest.mark.parametrize("strategy", ["evolution", "rl"])
def test_chief_and_three_workers_run_exactly_max_trials(strategy, tmp_path):
    # Evolution's trials go through keras-tuner's build and fit, which leave
    # edge_5 unread where edge_0 is "none".
    reads = {"PARTIAL_READS": 1} if strategy == "evolution" else {}
    outputs, _ = run_cluster(strategy, tmp_path, 12, TRIAL_SECONDS=0.3, WAIT_FOR_WORKERS=3,
                             **reads)
    trials, oracle = check_complete(tmp_path, 12)
    if reads:
        # What each worker's model read reached the chief (and its files went).
        assert oracle["unused"] == {
            t: ["edge_5"] if trial["hyperparameters"]["values"]["edge_0"] == "none" else []
            for t, trial in trials.items()}
        assert not list(pathlib.Path(tmp_path).rglob("worker_unused.json"))
    runs = runs_by_tuner(tmp_path)
    assert sorted(runs) == ["tuner0", "tuner1", "tuner2"], "a worker never got a trial"
    ran = [t for ids in runs.values() for t in ids]
    assert sorted(ran) == sorted(trials), "a trial ran twice or not at all"
    if strategy == "evolution":
        # Every worker's results reached the strategy (each ended trial
        # updates the population at the chief); which workers' trials survive
        # in the final population depends on scheduling: a worker that starts
        # first may run nearly all the trials.
        owners = {t: w for w, ids in runs.items() for t in ids}
        assert {owners[t] for t in oracle["end_order"]} == set(runs)
        assert set(oracle["population"]) <= set(oracle["end_order"])
    if strategy == "rl":
        # The controller learnt, asynchronously, from the workers' results.
        assert oracle["rl"]["updates"] >= 5 and oracle["rl"]["policy"]
    # keras-tuner's condition printing never reaches the chief's output.
    assert "edge_" not in outputs["chief"] or "Trial" in outputs["chief"]


def test_a_killed_worker_trial_is_reclaimed_and_the_chief_exits(tmp_path):
    outputs, killed_at = run_cluster(
        "evolution", tmp_path, 10, kill="tuner1",
        HANG_TUNER="tuner1", HEARTBEAT_TIMEOUT=2, TRIAL_SECONDS=0.5,
    )
    chief_done = time.monotonic()
    trials, _ = check_complete(tmp_path, 10)
    lost = [p.name.split("_")[-1] for p in tmp_path.glob("started_tuner1_*")]
    assert len(lost) == 1
    runs = runs_by_tuner(tmp_path)
    assert "tuner1" not in runs
    assert any(lost[0] in ids for ids in runs.values()), "the lost trial was not re-run"
    assert "lost its worker tuner1" in outputs["chief"]
    assert chief_done - killed_at < 90


@pytest.mark.parametrize("strategy, max_trials, made, env", [
    ("random", 4, 4, {"TRIAL_SECONDS": 0.1}),  # it made its max_trials
    # A space of 5 (and evolution's race of 3) runs out before max_trials=10:
    # the chief run again on it waited for a worker to ask before it ended.
    ("evolution", 10, 8, {"EDGES": 1}),
])
def test_the_chief_of_a_finished_search_run_again_exits_and_keeps_the_end_marker(
        strategy, max_trials, made, env, tmp_path):
    # The chief served for ever (no worker came to be told to stop) and deleted the
    # marker, so a late worker waited an hour instead of stopping.
    run_cluster(strategy, tmp_path, max_trials, workers=1, **env)
    before = trials_on_disk(tmp_path)
    assert len(before) == made
    started = time.monotonic()
    chief = start(strategy, tmp_path, max_trials, tuner_id="chief", port=free_port(),
                  overwrite=False, **env)
    code, output = wait(chief, timeout=60)
    assert code == 0, output[-3000:]
    assert time.monotonic() - started < 45
    marker = json.loads((tmp_path / "search" / distributed.CHIEF_ENDED_FILE).read_text())
    assert marker["reason"] == "done"
    assert trials_on_disk(tmp_path) == before


@pytest.mark.parametrize("strategy", ["evolution", "rl"])
def test_sigkill_mid_trial_then_resume_keeps_every_trial_and_the_strategy(strategy, tmp_path):
    whole = tmp_path / "whole"
    code, output = wait(start(strategy, whole, 12))
    assert code == 0, output[-3000:]
    expected = {k: t["hyperparameters"]["values"] for k, t in trials_on_disk(whole).items()}

    crashed = tmp_path / "crashed"
    process = start(strategy, crashed, 12, HANG_TRIAL=7)
    wait_for("started_single_07", crashed)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = trials_on_disk(crashed)
    completed = {k: t for k, t in before.items() if t["status"] == "COMPLETED"}
    assert len(completed) == 7
    saved = json.loads((crashed / "search" / "oracle.json").read_text())

    code, output = wait(start(strategy, crashed, 12, overwrite=False))
    assert code == 0, output[-3000:]
    after, oracle = check_complete(crashed, 12)
    for trial_id, trial in completed.items():  # nothing completed was lost or redone
        assert after[trial_id]["score"] == trial["score"]
    if strategy == "evolution":
        assert set(saved["population"]) <= set(oracle["end_order"])
    else:  # the controller went on from its saved weights, not from scratch
        assert saved["rl"]["updates"] >= 1
        assert oracle["rl"]["updates"] > saved["rl"]["updates"]
    # The restored population and random state continue the same search.
    assert {k: t["hyperparameters"]["values"] for k, t in after.items()} == expected

    # Killed between keras-tuner's save of a trial's end and the strategy's
    # learning from it, or between a new trial's file and the oracle's save:
    # the resumed search is the uninterrupted one, every trial run and counted.
    # One search killed at both points in turn (trials 5 and 8), resumed each time.
    # (The base oracle's saves, the same for every strategy: evolution's run only.)
    if strategy != "evolution":
        return
    directory = tmp_path / "killed_twice"
    code, _ = wait(start(strategy, directory, 12, KILL_AFTER_END=5))
    assert code == -signal.SIGKILL and (directory / "killed_after_end").exists()
    code, _ = wait(start(strategy, directory, 12, overwrite=False, KILL_AFTER_FILE=8))
    assert code == -signal.SIGKILL and (directory / "killed_after_file").exists()
    code, output = wait(start(strategy, directory, 12, overwrite=False))
    assert code == 0, output[-3000:]
    after, _ = check_complete(directory, 12)
    assert {k: t["hyperparameters"]["values"] for k, t in after.items()} == expected


def test_a_killed_chief_restarted_with_overwrite_false_finishes_the_search(tmp_path):
    # An earlier search's end, left in the directory: the new chief deletes
    # it, and the workers, which may see it first, do not stop on it.
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / distributed.CHIEF_ENDED_FILE).write_text(
        json.dumps({"ended_at": time.time() - 3600, "reason": "done"}))
    port = free_port()
    env = {"TRIAL_SECONDS": 1.0}
    chief = start("evolution", tmp_path, 10, tuner_id="chief", port=port, **env)
    workers = [
        start("evolution", tmp_path, 10, tuner_id=f"tuner{i}", port=port, **env) for i in range(2)
    ]
    deadline = time.monotonic() + 120
    while sum(len(ids) for ids in runs_by_tuner(tmp_path).values()) < 3:
        assert time.monotonic() < deadline, "the search never got going"
        time.sleep(0.2)
    os.killpg(chief.pid, signal.SIGKILL)
    chief.wait()
    saved = json.loads((tmp_path / "search" / "oracle.json").read_text())
    time.sleep(2)  # the workers' calls now fail: they must wait, not die
    chief = start("evolution", tmp_path, 10, tuner_id="chief", port=port, overwrite=False, **env)
    try:
        for worker in workers:
            code, output = wait(worker)
            assert code == 0, output[-3000:]
    except AssertionError as error:  # a worker waited in vain: what did the new chief do?
        os.killpg(chief.pid, signal.SIGKILL)
        raise AssertionError(f"{error}\n--- the restarted chief:\n"
                             f"{chief.communicate()[0][-3000:]}") from None
    code, output = wait(chief, timeout=60)
    assert code == 0, output[-3000:]
    trials, oracle = check_complete(tmp_path, 10)
    assert oracle["end_order"][: len(saved["end_order"])] == saved["end_order"]
    ran = [t for ids in runs_by_tuner(tmp_path).values() for t in ids]
    # A trial cut short by the crash may run again; every other runs once.
    assert len(ran) - len(set(ran)) <= 2 and set(ran) == set(trials)


def test_a_worker_that_dies_before_its_first_heartbeat_loses_its_trial_to_another(tmp_path):
    port = free_port()
    env = {"TRIAL_SECONDS": 0.3, "HEARTBEAT_TIMEOUT": 2, "DIE_AT_BEGIN": "tuner1",
           "ASK_BEST_AFTER": 1}
    chief = start("evolution", tmp_path, 8, tuner_id="chief", port=port, **env)
    workers = {name: start("evolution", tmp_path, 8, tuner_id=name, port=port, **env)
               for name in ("tuner0", "tuner1")}
    code, output = wait(workers["tuner1"])
    assert code == -signal.SIGKILL and list(tmp_path.glob("died_tuner1_*")), output[-3000:]
    code, output = wait(workers["tuner0"])
    assert code == 0, output[-3000:]
    # Asked for results after the chief had gone: an error at once, not a wait.
    assert "the chief has ended the search" in output and "ASKED in 0 s" in output
    code, chief_output = wait(chief, timeout=60)
    assert code == 0, chief_output[-3000:]
    check_complete(tmp_path, 8)
    assert "lost its worker tuner1" in chief_output


def test_too_many_consecutive_failures_end_a_distributed_search(tmp_path):
    port = free_port()
    env = {"FAIL_TRIALS": 1, "TRIAL_SECONDS": 0.2, "FAILING_WORKERS": 2}
    chief = start("random", tmp_path, 20, tuner_id="chief", port=port, **env)
    workers = [start("random", tmp_path, 20, tuner_id=f"tuner{i}", port=port, **env)
               for i in range(2)]
    outputs = [wait(worker, timeout=120) for worker in workers]
    code, chief_output = wait(chief, timeout=60)
    assert code != 0 and "Number of consecutive failures exceeded the limit of 3" in chief_output
    refused = [out for rc, out in outputs if rc != 0]
    assert refused and all("the chief refused end_trial: Number of consecutive failures"
                           in out for out in refused)
    assert "_InactiveRpcError" not in "".join(out for _, out in outputs)
    oracle = json.loads((tmp_path / "search" / "oracle.json").read_text())
    # The trials that tripped the limit wait for a resumed search, as in keras-tuner.
    assert not oracle["ongoing_trials"] and oracle["retry_queue"]
    assert 2 <= len(oracle["end_order"]) < 20
    # The workers' failures reach the chief's trials with their message (gRPC has none).
    failed = [t for t in trials_on_disk(tmp_path).values() if t["status"] == "FAILED"]
    assert len(failed) >= 2 and all("RuntimeError: fit exploded" in t["message"] for t in failed)

    # A worker started after the chief ended stops (it waited an hour, silently).
    started = time.monotonic()
    late = start("random", tmp_path, 20, tuner_id="late", port=port, ENDED_GRACE=2, **env)
    code, output = wait(late, timeout=120)
    assert code == 0, output[-3000:]
    assert "the chief ended this search" in output and "Number of consecutive failures" in output
    assert time.monotonic() - started < 60 and not (tmp_path / "ran_late.txt").exists()
    assert json.loads((tmp_path / "search" / "oracle.json").read_text()) == oracle


def test_a_second_search_in_a_directory_in_use_is_refused(tmp_path):
    from tests.tuners.synthetic_search import make_tuner

    process = start("random", tmp_path, 6, HANG_TRIAL=2)
    try:
        wait_for("started_single_2", tmp_path)
        before = trials_on_disk(tmp_path)
        # Both numbered their trials alike and overwrote each other's files.
        with pytest.raises(RuntimeError, match=r"another process is searching in \S+search; "
                                               "overwrite=True would delete its trials"):
            make_tuner("random", str(tmp_path), 6, overwrite=True)
        tuner = make_tuner("random", str(tmp_path), 6, overwrite=False)  # to look: fine
        with pytest.raises(RuntimeError, match="a second search would overwrite its trials"):
            tuner.search(verbose=0)
        assert trials_on_disk(tmp_path) == before
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    # The lock went with its process: the search resumes here and finishes.
    make_tuner("random", str(tmp_path), 6, overwrite=False).search(verbose=0)
    check_complete(tmp_path, 6)
