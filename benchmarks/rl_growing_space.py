"""Oracle time on a search space that grows trial by trial, as AutoKeras's does.

An AutoKeras or conditional keras-tuner model registers hyperparameters as it
builds: the space a search sees grows over its first trials. This drives each
oracle as keras-tuner does (``update_space`` with the space so far, then
``create_trial``, ``update_trial``, ``end_trial``, state saved to disk after
every call) on a space that starts with two decisions of five choices and
gains one more after each of the first trials until it holds ``--decisions``,
scoring trials with a formula so that only the oracles' own cost is measured.
Each oracle runs in a fresh process (nothing compiled before), one after
another, so the first search's one-off costs are counted.

Usage:
    python benchmarks/rl_growing_space.py [--decisions 40] [--trials 100] [--seeds 2]
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
ROOT = pathlib.Path(__file__).resolve().parents[1]

STRATEGIES = ["metanas RLControllerOracle", "metanas EvolutionOracle",
              "keras-tuner RandomSearchOracle"]
BASELINE = "keras-tuner RandomSearchOracle"


def one_search(strategy, seed, decisions, trials):
    """Seconds per trial of one search (run in a child process)."""
    import keras_tuner
    from keras_tuner.engine import trial as trial_module

    from metanas.tuners import EvolutionOracle, RLControllerOracle

    make = {
        "metanas RLControllerOracle": RLControllerOracle,
        "metanas EvolutionOracle": EvolutionOracle,
        "keras-tuner RandomSearchOracle": keras_tuner.oracles.RandomSearchOracle,
    }[strategy]
    objective = keras_tuner.Objective("score", "max")
    space = keras_tuner.HyperParameters()
    for d in range(2):
        space.Choice(f"x{d}", [0, 1, 2, 3, 4])
    oracle = make(objective=objective, max_trials=trials, seed=seed, hyperparameters=space)
    times = []
    with tempfile.TemporaryDirectory() as directory:
        oracle._set_project_dir(directory, "search")
        oracle.verbose = 0
        for i in range(trials):
            start = time.perf_counter()
            if len(space.space) < decisions:  # the model built last trial read a new one
                space.Choice(f"x{len(space.space)}", [0, 1, 2, 3, 4])
                oracle.update_space(space)
            trial = oracle.create_trial("tuner0")
            if trial.status == trial_module.TrialStatus.STOPPED:
                raise RuntimeError(f"{strategy} stopped early")
            values = trial.hyperparameters.values
            score = sum(float(v) * (1 if k < "x2" else -0.1) for k, v in values.items())
            oracle.update_trial(trial.trial_id, {"score": score})
            trial.status = trial_module.TrialStatus.COMPLETED
            oracle.end_trial(trial)
            times.append(time.perf_counter() - start)
    return times


def git(*args):
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--decisions", type=int, default=40)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "rl_growing_space.md"))
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.decisions < 2 or args.trials <= args.decisions or args.seeds < 1:
        parser.error("need --decisions >= 2, --trials > --decisions and --seeds >= 1")
    if args.child:
        times = one_search(args.child[0], int(args.child[1]), args.decisions, args.trials)
        print(json.dumps(times))
        return 0
    rows = {}
    for strategy in STRATEGIES:
        rows[strategy] = []
        for seed in range(args.seeds):
            out = subprocess.run(
                [sys.executable, __file__, "--decisions", str(args.decisions), "--trials",
                 str(args.trials), "--child", strategy, str(seed)],
                capture_output=True, text=True, check=True, cwd=ROOT,
            ).stdout
            times = json.loads(out.strip().splitlines()[-1])
            rows[strategy].append(times)
            print(f"{strategy} seed {seed}: total {sum(times):.2f} s, slowest trial "
                  f"{max(times):.2f} s", flush=True)

    def mean(values):
        return sum(values) / len(values)

    grow = args.decisions - 2
    base = mean([sum(t) for t in rows[BASELINE]])
    lines = [
        "# Oracle time on a growing search space",
        "",
        f"Command: `python benchmarks/rl_growing_space.py --decisions {args.decisions} "
        f"--trials {args.trials} --seeds {args.seeds}`  ",
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC  ",
        f"Commit: {git('rev-parse', '--short', 'HEAD')}"
        f"{' (with uncommitted changes)' if git('status', '--porcelain') else ''}  ",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
        f"(load average at the end {', '.join(f'{x:.1f}' for x in os.getloadavg())}), "
        f"Python {platform.python_version()}",
        "",
        f"A space of 2 decisions of five choices gains one after each of the first {grow} "
        f"trials (to {args.decisions}); {args.trials} trials; each search in a fresh process "
        f"(one-off compilation included); means over {args.seeds} seeds. Times are the "
        "oracle's full cycle (`update_space`, `create_trial`, `update_trial`, `end_trial`, "
        f"state saved after each). Ratio: total time over {BASELINE}'s.",
        "",
        f"| Oracle | first {grow} trials (s) | all {args.trials} trials (s) | slowest trial (s) "
        "| ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    for strategy, runs in rows.items():
        total = mean([sum(t) for t in runs])
        lines.append(
            f"| {strategy} | {mean([sum(t[:grow]) for t in runs]):.2f} | {total:.2f} "
            f"| {mean([max(t) for t in runs]):.2f} | {total / base:.1f}x |"
        )
    lines.append("")
    pathlib.Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
