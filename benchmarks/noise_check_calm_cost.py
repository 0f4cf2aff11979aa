"""Where the noise-checked race's cost on a calm table comes from (benchmarks/noise_check.md).

Runs metanas evolution on one task for seeds 100-199, 100 evaluations, in variants:

- ``default``: default evolution (a race over the last 10%).
- ``calm``: ``noisy_racing_fraction=0.4`` with the check forced to find the scores
  repeatable, so every search pays the check's 8 evaluations at 60% and goes on.
- ``calm-first``: as ``calm``, but evolution's population judges each configuration by
  its first score (the check's second scores do not move it).
- ``default92``: default evolution with 92 evaluations (8 fewer new configurations).

It prints each variant's mean regret of the returned configuration (± standard error),
the regret of the best configuration evaluated ("found") and the configurations tried.

Usage:

    python benchmarks/noise_check_calm_cost.py nb201/cifar100 default,calm,calm-first,default92
"""

import os
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402

from metanas.bench.runner import TableTuner, _objective, skip_checkpoints, summarise_history  # noqa: E402
from metanas.bench.tasks import load_task  # noqa: E402
from metanas.tuners import EvolutionOracle  # noqa: E402

SEEDS = range(100, 200)


class FirstScore(EvolutionOracle):
    """Evolution whose population sees each configuration's first score only."""

    def config_fitness(self, trial):
        scores = self._config_fitness().get(self._id_to_hash[trial.trial_id])
        return scores[0] if scores else self.fitness(trial)


def run(job):
    task_name, seed, variant = job
    task = load_task(task_name)
    cls = FirstScore if variant == "calm-first" else EvolutionOracle
    kwargs = {"noisy_racing_fraction": 0.4} if variant.startswith("calm") else {}
    budget = 92 if variant == "default92" else 100
    oracle = cls(objective=_objective(task, False), max_trials=budget, seed=seed, **kwargs)
    if variant.startswith("calm"):
        oracle.repeat_correlation = -2.0  # any correlation passes: always calm
    skip_checkpoints(oracle)
    directory = tempfile.mkdtemp()
    try:
        tuner = TableTuner(task, oracle=oracle, noise_seed=seed, directory=directory,
                           project_name="run", overwrite=True)
        skip_checkpoints(oracle, tuner)
        tuner.search(verbose=0)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    summary = summarise_history(task, tuner.history, evals=budget, use_time=False)
    tried = len({task.code(record["values"]) for record in tuner.history})
    return variant, summary["regret"], summary["found_regret"], tried


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    task, variants = argv[0], argv[1].split(",")
    jobs = [(task, seed, variant) for variant in variants for seed in SEEDS]
    with ProcessPoolExecutor(2) as pool:
        results = list(pool.map(run, jobs, chunksize=5))
    for variant in variants:
        rows = np.array([r[1:] for r in results if r[0] == variant])
        print(f"{task} {variant:12s} regret {rows[:, 0].mean():.4g} ± "
              f"{rows[:, 0].std(ddof=1) / np.sqrt(len(rows)):.2g} found {rows[:, 1].mean():.4g} "
              f"tried {rows[:, 2].mean():.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
