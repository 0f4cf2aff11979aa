"""What the table noise's own stream changed: runs of noise protocol 1 against 2.

Until 2026-12-07 a run drew its table noise from ``default_rng(seed)``, the stream a
metanas oracle or the reference evolution seeded with the run's seed draws its own
decisions from (noise protocol 1); since, from ``SeedSequence([seed, tag])``
(protocol 2, `metanas.bench.runner.noise_rng`). For each (task, strategy) in both raw
files: mean regret under each protocol, their ratio and a two-sided Mann-Whitney p (the
same seeds, independent noise draws, so unpaired). Strategies whose oracle draws from
another generator (keras-tuner's, Optuna's) were never coupled: their rows show how much
a change of noise draws alone moves a mean.

Usage:

    .venv/bin/python benchmarks/noise_protocol.py OLD_RAW NEW_RAW [--out FILE.md]
"""

import argparse
import sys

import numpy as np
from scipy.stats import mannwhitneyu

from metanas.bench.report import load_results

COUPLED = ("metanas/", "ref/")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    cells = {}
    for which, path in (("old", args.old), ("new", args.new)):
        for r in load_results(path):
            if r.get("multi_objective") or r["strategy"] == "kt/bayesian":
                continue
            cells.setdefault((r["task"], r["strategy"]), {}).setdefault(which, []).append(
                r["regret"])
    lines = ["| task | strategy | protocol 1 | protocol 2 | 2 / 1 | p |",
             "|---|---|---|---|---|---|"]
    summary = {"coupled": [], "other": []}
    for (task, strategy), pair in sorted(cells.items()):
        if set(pair) != {"old", "new"}:
            continue
        old, new = np.array(pair["old"]), np.array(pair["new"])
        p = float(mannwhitneyu(old, new, alternative="two-sided").pvalue) if (
            np.ptp(np.concatenate([old, new])) > 0) else 1.0
        ratio = new.mean() / old.mean() if old.mean() > 0 else float("nan")
        summary["coupled" if strategy.startswith(COUPLED) else "other"].append((ratio, p))
        lines.append(f"| {task} | `{strategy}` | {old.mean():.3g} | {new.mean():.3g} | "
                     f"{ratio:.2f} | {p:.2g}{'*' if p < 0.05 else ''} |")
    text = []
    for kind, rows in summary.items():
        if rows:
            ratios = np.array([r for r, _ in rows])
            who = ("metanas and the reference evolution" if kind == "coupled"
                   else "keras-tuner and Optuna")
            mean = np.exp(np.nanmean(np.log(ratios)))
            text.append(f"- {who}: {len(rows)} cells, geometric mean ratio {mean:.3f}, "
                        f"{sum(p < 0.05 for _, p in rows)} with p < 0.05 "
                        f"({0.05 * len(rows):.1f} expected by chance)")
    out = "\n".join(text + [""] + lines) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
