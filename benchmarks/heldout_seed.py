"""The bar judged on a training seed the search never saw.

`metanas bench` judges the configuration a search returns by its true score,
the mean over the table's training seeds (2-5 per row), and draws every
evaluation from those same seeds. A search that evaluates configurations
again (evolution's race) thereby estimates the very mean it is judged by,
which a real search, whose every training run is a new seed, cannot. This
script runs the strategies with one training seed of every row hidden from
them (seed index ``run seed % the row's seed count``: NAS-Bench-201 rows with
2 seeds keep one visible, which a re-evaluation then repeats) and judges the
returned configuration by its score on the hidden seed: out of sample, and
over consecutive run seeds each of a row's seeds is hidden equally often. The
regret is the table's optimum (of the seed means) minus that score, not
clipped at 0. Every strategy run with one seed hides the same seed, so
strategies are compared paired by seed (Wilcoxon signed-rank) as well as
unpaired (Mann-Whitney U): the seeds of HPOBench's tables differ by a shared
offset larger than the configurations do.

Usage (seeds 200-299 were never used to choose a setting):

    .venv/bin/python benchmarks/heldout_seed.py --first-seed 200 --seeds 100 \\
        --output benchmarks/heldout_seed
"""

import argparse
import gzip
import json
import multiprocessing
import os
import sys
import time

import numpy as np

STRATEGIES = ["metanas/evolution", "ref/regularized-evolution", "optuna/tpe", "metanas/random",
              "kt/random", "optuna/random"]
RANDOMS = ["metanas/random", "kt/random", "optuna/random"]


class HiddenSeed:
    """``task`` with one training seed per row hidden from `observe`."""

    def __init__(self, task, hidden: int) -> None:
        self._task, self.hidden = task, hidden

    def __getattr__(self, name):
        return getattr(self._task, name)

    def hidden_index(self, code: int) -> int:
        return self.hidden % int(self._task.seed_counts[code])  # each seed equally often

    def observe(self, values, rng) -> float:
        code = self._task.code(values)
        count = int(self._task.seed_counts[code])
        visible = [i for i in range(count) if i != self.hidden % count]
        return float(self._task.scores[code, visible[int(rng.integers(len(visible)))]])

    def hidden_score(self, values) -> float:
        code = self._task.code(values)
        return float(self._task.scores[code, self.hidden_index(code)])


def run(job):
    task_name, strategy, seed, evals = job
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from metanas.bench import load_task
    from metanas.bench.runner import _run_keras_tuner, _run_optuna, incumbents
    from metanas.bench.strategies import get_strategy

    task = HiddenSeed(load_task(task_name), hidden=seed)
    spec = get_strategy(strategy)
    runner = _run_optuna if spec.kind == "optuna" else _run_keras_tuner
    history, _, _ = runner(spec, task, seed=seed, evals=evals, use_time=False,
                           multi_objective=False)
    *_, (values, observed) = incumbents(task, history[:evals])
    hidden = task.hidden_score(values)
    sign = 1.0 if task.maximize else -1.0
    return {"task": task_name, "strategy": strategy, "seed": seed, "evals": evals,
            "heldout_regret": sign * (task.optimum - hidden),
            "regret": task.regret(task.true_score(values)),
            "observed": observed, "incumbent": values}


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _mean(runs, task, strategy, key):
    return float(np.mean([r[key] for r in runs if r["task"] == task and r["strategy"] == strategy]))


def table(runs, tasks, strategies):
    from scipy.stats import mannwhitneyu, wilcoxon

    lines = ["| task | " + " | ".join(f"`{s}`" for s in strategies)
             + " | evolution / metanas random | / kt random | / optuna random "
               "| p vs TPE (MWU; paired) | p vs reference (MWU; paired) "
               "| in-sample ratio (metanas random) |",
             "|---|" + "---|" * (len(strategies) + 6)]
    for task in tasks:
        means = {s: _mean(runs, task, s, "heldout_regret") for s in strategies}

        def by_seed(strategy):
            return {r["seed"]: r["heldout_regret"] for r in runs
                    if r["task"] == task and r["strategy"] == strategy}

        evo = by_seed("metanas/evolution")

        def p_against(peer):
            other = by_seed(peer)
            seeds = sorted(set(evo) & set(other))
            unpaired = mannwhitneyu(list(evo.values()), list(other.values()),
                                    alternative="two-sided").pvalue
            try:
                paired = wilcoxon([evo[s] for s in seeds], [other[s] for s in seeds]).pvalue
            except ValueError:  # no difference at all
                paired = float("nan")
            return f"{unpaired:.2g}; {paired:.2g}"

        in_sample = _ratio(_mean(runs, task, "metanas/evolution", "regret"),
                           _mean(runs, task, "metanas/random", "regret"))
        ratios = [_ratio(means["metanas/evolution"], means[r]) for r in RANDOMS]
        lines.append(f"| {task} | " + " | ".join(f"{means[s]:.3g}" for s in strategies)
                     + " | " + " | ".join(f"{x:.2f}" for x in ratios)
                     + f" | {p_against('optuna/tpe')} | "
                       f"{p_against('ref/regularized-evolution')} | {in_sample:.2f} |")
    return lines


def main(argv=None) -> int:
    from metanas.bench import TUNING_TASKS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TUNING_TASKS))
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=200)
    parser.add_argument("--evals", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    tasks, strategies = args.tasks.split(","), args.strategies.split(",")
    missing = [s for s in ["metanas/evolution", "ref/regularized-evolution", "optuna/tpe",
                           *RANDOMS] if s not in strategies]
    if missing:
        parser.error(f"--strategies must include {missing} (the table compares with them)")
    jobs = [(t, s, seed, args.evals) for t in tasks for s in strategies
            for seed in range(args.first_seed, args.first_seed + args.seeds)]
    started, runs = time.time(), []
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        for i, result in enumerate(pool.imap_unordered(run, jobs, chunksize=4), 1):
            runs.append(result)
            if i % 200 == 0:
                print(f"{i}/{len(jobs)} runs ({time.time() - started:.0f} s)", file=sys.stderr)
    os.makedirs(args.output, exist_ok=True)
    with gzip.open(os.path.join(args.output, "raw.json.gz"), "wt") as handle:
        json.dump(sorted(runs, key=lambda r: (r["task"], r["strategy"], r["seed"])), handle)
    command = "python benchmarks/heldout_seed.py " + " ".join(argv or sys.argv[1:])
    report = [f"Seeds {args.first_seed}-{args.first_seed + args.seeds - 1}, {args.evals} "
              f"evaluations; {time.time() - started:.0f} s on {args.workers} processes. "
              f"Command: `{command}`", "",
              "Mean held-out regret (optimum minus the returned configuration's score on the "
              "hidden training seed; lower is better):", ""] + table(runs, tasks, strategies)
    with open(os.path.join(args.output, "report.md"), "w") as handle:
        handle.write("\n".join(report) + "\n")
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
