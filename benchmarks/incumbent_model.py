"""Would a surrogate model's choice of incumbent beat the race's? (tuning tasks, offline)

On HPOBench one evaluation's noise is many times the spread of the true scores
among the best configurations (`table_noise.md`), so what a search returns is
mostly chance. Noisy Bayesian optimisation answers this by returning the
evaluated configuration with the best *posterior mean* of a Gaussian process
fitted to every observation, not the best observation (Frazier, "A Tutorial on
Bayesian Optimization", 2018; Letham et al., "Constrained Bayesian
Optimization with Noisy Experiments", Bayesian Analysis 2019): the model pools
the evaluations of similar configurations, so one lucky draw counts for less.

This script runs default metanas evolution (which ends with a race and returns
its winner by mean score) and metanas random search on the given tasks, keeps
each run's evaluations, and compares what each returned with two model-based
choices: the best posterior mean among all evaluated configurations
(*model, all*) and among the configurations evaluated more than once, the
race's finalists (*model, finalists*). The GP (scikit-learn, the examples
extra) has a constant times an ARD Matern-5/2 kernel plus white noise, on
choices encoded by rank in [0, 1] (numbers) or one-hot (categories), fitted
by maximum likelihood. Cells are mean regret / random search's returned
regret, as in the bar (at most 0.5 asked).

Usage:
    python benchmarks/incumbent_model.py --seeds 30 [--tasks hpobench/australian,...]
"""

from __future__ import annotations

import argparse
import collections
import datetime
import multiprocessing
import os
import pathlib
import subprocess
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402

from metanas.bench.tasks import TUNING_TASKS  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
STRATEGIES = ("metanas/evolution", "metanas/random")
HPOBENCH = [t for t in TUNING_TASKS if t.startswith("hpobench/")]


def encode(task, values) -> list:
    """A configuration as features: rank in [0, 1] for numbers, one-hot for categories."""
    out = []
    for name, choices in task.space.items():
        index = choices.index(values[name])
        if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in choices):
            out.append(index / max(len(choices) - 1, 1))
        else:
            out.extend(1.0 if j == index else 0.0 for j in range(len(choices)))
    return out


def best_posterior_mean(task, history, candidates):
    """The candidate with the best GP posterior mean, the GP fitted to every observation."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    x = np.array([encode(task, r["values"]) for r in history])
    y = np.array([r["observed"] for r in history], dtype=float) * (1 if task.maximize else -1)
    finite = np.isfinite(y)
    x, y = x[finite], y[finite]
    kernel = (ConstantKernel(1.0, (1e-2, 1e2))
              * Matern(np.full(x.shape[1], 0.5), (1e-2, 1e2), nu=2.5)
              + WhiteKernel(0.5, (1e-4, 10.0)))
    gp = GaussianProcessRegressor(kernel, random_state=0, n_restarts_optimizer=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bounds reached on a flat likelihood
        gp.fit(x, (y - y.mean()) / (y.std() or 1.0))
    unique = list({task.code(v): v for v in candidates}.values())
    return unique[int(np.argmax(gp.predict(np.array([encode(task, v) for v in unique]))))]


def run(job):
    task_name, strategy, seed = job
    from metanas.bench import get_strategy, load_task
    from metanas.bench.runner import _run_keras_tuner, summarise_history

    task = load_task(task_name)
    history, _, _ = _run_keras_tuner(get_strategy(strategy), task, seed=seed, evals=100,
                                     use_time=False, multi_objective=False)
    history = history[:100]
    counts = collections.Counter(task.code(r["values"]) for r in history)
    evaluated = [r["values"] for r in history]
    repeated = [v for v in evaluated if counts[task.code(v)] > 1] or evaluated
    regret = summarise_history(task, history, evals=100, use_time=False)
    return {
        "task": task_name, "strategy": strategy, "seed": seed,
        "returned": regret["regret"], "found": regret["found_regret"],
        "model_all": task.regret(task.true_score(best_posterior_mean(task, history, evaluated))),
        "model_finalists": task.regret(
            task.true_score(best_posterior_mean(task, history, repeated))),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", default=",".join(HPOBENCH),
                        help="comma-separated tuning tasks (default: the HPOBench ones)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "incumbent_model.md"))
    args = parser.parse_args(argv)
    tasks = args.tasks.split(",")
    bad = [t for t in tasks if t not in TUNING_TASKS]
    if bad or args.seeds < 2:
        parser.error(f"--tasks must be tuning tasks ({', '.join(TUNING_TASKS)}), got {bad}"
                     if bad else f"--seeds must be at least 2, got {args.seeds}")
    jobs = [(t, s, seed) for t in tasks for s in STRATEGIES for seed in range(args.seeds)]
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        results = pool.map(run, jobs, chunksize=1)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    command = " ".join(["python benchmarks/incumbent_model.py", *(argv or sys.argv[1:])])
    lines = [
        "# A surrogate model's incumbent against the race's",
        "",
        f"Date {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, commit "
        f"{commit}, seeds 0-{args.seeds - 1}, 100 evaluations. Command: `{command}`",
        "",
        "Mean regret / metanas random search's returned regret (the bar asks at most 0.5). "
        "*returned*: what the search returns (evolution: its race's winner; random: its "
        "best observation); *model, all*: the evaluated configuration with the best GP "
        "posterior mean; *model, finalists*: the same among configurations evaluated more "
        "than once (evolution's race; all for random search); *found*: the best "
        "configuration evaluated, by true score (no selection can do better).",
        "",
        "| task | strategy | returned | model, all | model, finalists | found |",
        "|---|---|---|---|---|---|",
    ]
    for t in tasks:
        base = np.mean([r["returned"] for r in results
                        if r["task"] == t and r["strategy"] == "metanas/random"])
        for s in STRATEGIES:
            rows = [r for r in results if r["task"] == t and r["strategy"] == s]
            cells = [np.mean([r[k] for r in rows]) / base
                     for k in ("returned", "model_all", "model_finalists", "found")]
            lines.append(f"| {t} | {s} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    text = "\n".join(lines) + "\n"
    pathlib.Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
