"""The bar on 100 fresh seeds: the table of RESULTS.md's "The bar at 100 seeds".

Reads the raw file of

    metanas bench --tasks tuning --strategies metanas/evolution,\
    metanas/evolution-no-surrogate,ref/regularized-evolution,metanas/random,optuna/tpe,\
    kt/random,optuna/random --seeds 100 --first-seed 100 --evals 100 --workers 2 \
        --no-plots --output benchmarks/results-100seeds

and prints, per tuning task, mean regret ± standard error of default evolution, the
reference evolution and Optuna TPE with two-sided Mann-Whitney p-values against them, the
previous defaults and the three random searches, and default evolution's mean regret over
metanas random search's (the bar's second half); then default evolution against the
previous defaults paired by seed (Wilcoxon signed-rank).

Usage:

    .venv/bin/python benchmarks/bar_100seeds.py benchmarks/results-100seeds/raw.json.gz

A run without the previous defaults (the unused seeds 200-299,
`benchmarks/results-200seeds`) has "–" in their column and no paired comparison.
"""

import argparse
import sys

import numpy as np
from scipy.stats import mannwhitneyu, wilcoxon

from metanas.bench import TUNING_TASKS
from metanas.bench.report import load_results

OURS, REFERENCE, TPE = "metanas/evolution", "ref/regularized-evolution", "optuna/tpe"
PREVIOUS, RANDOMS = "metanas/evolution-no-surrogate", ("metanas/random", "kt/random",
                                                       "optuna/random")


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.2g}"


def _ratio(value: float) -> str:
    return f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw")
    args = parser.parse_args(argv)
    runs = {}
    for r in load_results(args.raw):
        runs.setdefault((r["task"], r["strategy"]), {})[r["seed"]] = r["regret"]
    print("| task | metanas evolution | reference evolution | p vs reference | Optuna TPE | "
          "p vs TPE | previous defaults | metanas random | keras-tuner random | "
          "Optuna random | evolution / metanas random |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    paired = []
    for task in TUNING_TASKS:
        if (task, OURS) not in runs:
            continue
        regret = {s: np.array(list(runs[(task, s)].values())) for s in
                  (OURS, REFERENCE, TPE, PREVIOUS, *RANDOMS) if (task, s) in runs}
        ours = regret[OURS]
        p_ref = mannwhitneyu(ours, regret[REFERENCE], alternative="two-sided").pvalue
        p_tpe = mannwhitneyu(ours, regret[TPE], alternative="two-sided").pvalue
        cell = f"{ours.mean():.3g} ± {ours.std(ddof=1) / np.sqrt(len(ours)):.2g}"
        if p_ref < 0.05 and ours.mean() < regret[REFERENCE].mean():
            cell = f"**{cell}**"
        ref = regret[REFERENCE]
        print(f"| {task} | {cell} | {ref.mean():.3g} ± {ref.std(ddof=1) / np.sqrt(len(ref)):.2g}"
              f" | {_p(p_ref)} | {regret[TPE].mean():.3g} | {_p(p_tpe)} | "
              + (f"{regret[PREVIOUS].mean():.3g} | " if PREVIOUS in regret else "– | ")
              + " | ".join(f"{regret[s].mean():.3g}" for s in RANDOMS)
              + f" | {_ratio(ours.mean() / regret['metanas/random'].mean())} |")
        if PREVIOUS not in regret:
            continue
        seeds = sorted(set(runs[(task, OURS)]) & set(runs[(task, PREVIOUS)]))
        a = np.array([runs[(task, OURS)][s] for s in seeds])
        b = np.array([runs[(task, PREVIOUS)][s] for s in seeds])
        paired.append((task, a.mean() / b.mean(), wilcoxon(a, b).pvalue))
    n = len(next(iter(runs.values())))
    print(f"\n({n} seeds per cell.)")
    if paired:
        print("Default evolution against the previous defaults, paired by seed (ratio of "
              "mean regret, Wilcoxon p):\n")
    for task, ratio, p in sorted(paired, key=lambda item: item[1]):
        print(f"- {task}: {ratio:.2f} (p = {p:.2g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
