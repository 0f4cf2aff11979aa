"""Evolution with the noise-checked race against its defaults, from `metanas bench` raw files.

``metanas/evolution-noise-check`` is default evolution with
``noisy_racing_fraction=0.4``: its race begins at 60% of ``max_trials`` and
goes on to the end only if the finalists' second scores do not repeat their
first (see `MetanasOracle`); otherwise the search goes back to new
configurations and ends with the default race (the last 10%). This prints,
per task, both strategies' mean regret (± standard error), a two-sided
Mann-Whitney U test between them, and each over metanas random search's (the
issue's bar asks for at most 0.5), with the reference evolution and Optuna TPE.

Usage (the commands behind benchmarks/noise_check.md):

    metanas bench --tasks tuning --strategies metanas/evolution-noise-check --seeds 100 \\
        --first-seed 100 --evals 100 --workers 2 --no-plots --output SCRATCH/fresh
    python benchmarks/noise_check.py SCRATCH/fresh/raw.json.gz benchmarks/results-100seeds/raw.json.gz
    metanas bench --tasks all --strategies metanas/evolution-noise-check --seeds 20 \\
        --evals 100 --workers 2 --no-plots --output SCRATCH/all
    python benchmarks/noise_check.py SCRATCH/all/raw.json.gz benchmarks/results/raw.json.gz
"""

import argparse
import sys

import numpy as np
from scipy.stats import mannwhitneyu

from metanas.bench import TUNING_TASKS, report

CHECKED = "metanas/evolution-noise-check"
DEFAULT = "metanas/evolution"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checked", help="raw file with the noise-checked runs")
    parser.add_argument("others", help="raw file with default evolution and the peers")
    args = parser.parse_args(argv)
    checked = report.load_results(args.checked)
    others = report.load_results(args.others)

    def regrets(results, strategy, task):
        return {r["seed"]: r["regret"] for r in results
                if r["strategy"] == strategy and r["task"] == task}

    print("| task | noise check | default | p | noise check / random | default / random "
          "| reference | Optuna TPE |")
    print("|---|---|---|---|---|---|---|---|")
    for task in report._tasks(checked):
        new, old = regrets(checked, CHECKED, task), regrets(others, DEFAULT, task)
        seeds = sorted(set(new) & set(old))
        if not seeds:
            continue
        a = np.array([new[s] for s in seeds])
        b = np.array([old[s] for s in seeds])
        peers = {name: np.mean([v for s, v in regrets(others, name, task).items() if s in seeds])
                 for name in ("metanas/random", "ref/regularized-evolution", "optuna/tpe")}
        p = mannwhitneyu(a, b).pvalue
        sem = lambda x: x.std(ddof=1) / np.sqrt(len(x))  # noqa: E731
        label = task if task in TUNING_TASKS else f"{task} (held out)"
        print(f"| {label} | {a.mean():.3g} ± {sem(a):.2g} | {b.mean():.3g} ± {sem(b):.2g} "
              f"| {p:.2g} | {a.mean() / peers['metanas/random']:.2f} "
              f"| {b.mean() / peers['metanas/random']:.2f} "
              f"| {peers['ref/regularized-evolution']:.3g} | {peers['optuna/tpe']:.3g} |")
    print(f"\n{len(seeds)} seeds per cell ({seeds[0]}-{seeds[-1]}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
