"""The RL controller's reward normalisation: rank (the default) against z-score.

Reads `metanas bench` raw files holding runs of ``metanas/rl`` (rank-normalised
rewards) and ``metanas/rl-zscore`` (the previous default) and writes a Markdown
table per file: mean regret of each, the ratio rank / z-score, and the two-sided
Wilcoxon signed-rank test paired by seed.

Usage:
    python benchmarks/rl_rewards.py LABEL=RAW.json.gz [...] --out benchmarks/rl_rewards.md
"""

from __future__ import annotations

import argparse
import collections
import shlex
import sys
from typing import Dict, List

import numpy as np
from scipy.stats import wilcoxon

from metanas.bench import report

RANK, ZSCORE = "metanas/rl", "metanas/rl-zscore"


def table(results: List[dict]) -> List[str]:
    by: Dict[tuple, Dict[int, float]] = collections.defaultdict(dict)
    for r in results:
        if r["strategy"] in (RANK, ZSCORE):
            by[(r["task"], r["strategy"])][r["seed"]] = r["regret"]
    lines = ["| task | rank (default) | z-score | rank / z-score | Wilcoxon p (paired) |",
             "|---|---|---|---|---|"]
    for task in sorted({t for t, _ in by}):
        rank, zscore = by[(task, RANK)], by[(task, ZSCORE)]
        seeds = sorted(set(rank) & set(zscore))
        x = np.array([rank[s] for s in seeds])
        y = np.array([zscore[s] for s in seeds])
        p = wilcoxon(x, y).pvalue if np.any(x != y) else 1.0
        lines.append(f"| {task} | {x.mean():.4g} | {y.mean():.4g} | {x.mean() / y.mean():.2f} "
                     f"| {p:.3f} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="LABEL=RAW.json.gz")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    lines = ["# RL controller: rank-normalised rewards against z-scored ones", "",
             "Mean regret of the returned configuration, 100 evaluations; Wilcoxon "
             "signed-rank test paired by seed (two-sided). Written by "
             f"`{shlex.join(['python', 'benchmarks/rl_rewards.py', *args.runs])} "
             f"--out {shlex.quote(args.out)}`.", ""]
    for item in args.runs:
        label, _, path = item.partition("=")
        lines += [f"## {label}", "", f"From `{path}`.", ""]
        lines += table(report.load_results(path)) + [""]
    with open(args.out, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
