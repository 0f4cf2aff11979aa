"""Chooses EvolutionOracle's default settings on the tuning tasks only.

Races a grid of settings, the reference regularized evolution and random search
on `metanas.bench.TUNING_TASKS` (never the held-out tasks) and writes, per
setting, the mean regret on each task divided by the reference evolution's
(below 1 is better than the reference) and by random search's; the setting
that beats the reference on the most tasks, then with the lowest mean ratio,
is the candidate default.

Usage (the command recorded in benchmarks/tune_evolution.md):

    .venv/bin/python benchmarks/tune_evolution.py --seeds 10 --evals 100 --workers 2 \
        [--population 10 20 --tournament 3 5 --aging on off --mutation 0.1 0.2 --crossover 0.2
         --incumbent-evaluations 1 3 --racing-fraction 0 0.2 --finalists 4 8
         --surrogate-candidates 1 8]
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import itertools
import json
import os
import subprocess
import sys
import time

import numpy as np

from metanas.bench import TUNING_TASKS, run_many

HERE = os.path.dirname(os.path.abspath(__file__))


def grid(args):
    """The settings raced: population, tournament, aging, mutation, crossover."""
    for (population, tournament, aging, mutation, crossover, evaluations, racing, finalists,
         noisy, candidates) in itertools.product(
            args.population, args.tournament, [a == "on" for a in args.aging], args.mutation,
            args.crossover, args.incumbent_evaluations, args.racing_fraction, args.finalists,
            args.noisy_racing_fraction, args.surrogate_candidates,
    ):
        if noisy is not None and noisy < racing:
            continue
        yield {
            "population_size": population,
            "tournament_size": tournament,
            "aging": aging,
            "mutation_rate": mutation,
            "crossover_rate": crossover,
            "incumbent_evaluations": evaluations,
            "racing_fraction": racing,
            "finalists": finalists,
            "noisy_racing_fraction": noisy,
            "surrogate_candidates": candidates,
        }


def label(settings) -> str:
    return (f"pop={settings['population_size']} tour={settings['tournament_size']} "
            f"aging={'on' if settings['aging'] else 'off'} mut={settings['mutation_rate']} "
            f"cross={settings['crossover_rate']} "
            f"inc_evals={settings['incumbent_evaluations']} "
            f"race={settings['racing_fraction']}x{settings['finalists']}"
            + (f" noisy={settings['noisy_racing_fraction']}"
               if settings.get("noisy_racing_fraction") is not None else "")
            + f" surrogate={settings.get('surrogate_candidates', 1)}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--evals", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", default=os.path.join(HERE, "tune_evolution"))
    parser.add_argument("--population", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--tournament", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--aging", choices=("on", "off"), nargs="+", default=["on", "off"])
    parser.add_argument("--mutation", type=float, nargs="+", default=[0.1, 0.2])
    parser.add_argument("--crossover", type=float, nargs="+", default=[0.2])
    parser.add_argument("--incumbent-evaluations", type=int, nargs="+", default=[1])
    parser.add_argument("--racing-fraction", type=float, nargs="+", default=[0.0])
    parser.add_argument("--finalists", type=int, nargs="+", default=[4])
    parser.add_argument("--surrogate-candidates", type=int, nargs="+", default=[1],
                        help="children the TPE surrogate ranks per trial (default 1: none "
                             "ranked, as every run before the surrogate; the oracle's "
                             "default is 8)")
    parser.add_argument("--noisy-racing-fraction", type=float, nargs="+", default=[None],
                        help="the race's share when the scores prove noisy (default: "
                             "--racing-fraction's, no noise check)")
    args = parser.parse_args(argv)
    settings_list = list(grid(args))
    jobs = []
    for task in TUNING_TASKS:
        for seed in range(args.seeds):
            for baseline in ("ref/regularized-evolution", "metanas/random"):
                jobs.append({"task_name": task, "strategy": baseline, "seed": seed,
                             "evals": args.evals, "use_time": False})
            for i, settings in enumerate(settings_list):
                jobs.append({"task_name": task, "strategy": f"grid/{i}", "seed": seed,
                             "evals": args.evals, "settings": settings, "use_time": False})
    start = time.time()
    def progress(done, total, _):
        if done % 200 == 0:
            print(f"{done}/{total} runs, {time.time() - start:.0f} s", flush=True)

    results = run_many(jobs, workers=args.workers, progress=progress)
    elapsed = time.time() - start
    regret = {}
    for r in results:
        regret.setdefault((r["task"], r["strategy"]), []).append(r["regret"])
    mean = {k: float(np.mean(v)) for k, v in regret.items()}
    rows = []
    for i, settings in enumerate(settings_list):
        name = f"grid/{i}"
        vs_ref = [mean[(t, name)] / max(mean[(t, "ref/regularized-evolution")], 1e-12)
                  for t in TUNING_TASKS]
        vs_rand = [mean[(t, name)] / max(mean[(t, "metanas/random")], 1e-12)
                   for t in TUNING_TASKS]
        wins = sum(v <= 1.0 for v in vs_ref)
        rows.append((-wins, float(np.mean(vs_ref)), label(settings), vs_ref, vs_rand, settings))
    rows.sort(key=lambda r: (r[0], r[1]))
    os.makedirs(args.output, exist_ok=True)
    with gzip.open(os.path.join(args.output, "raw.json.gz"), "wt") as f:
        json.dump([{k: r[k] for k in ("task", "strategy", "seed", "settings", "regret")}
                   for r in results], f)
    grid_args = " ".join(
        f"--{name.replace('_', '-')} " + " ".join(str(v) for v in getattr(args, name))
        for name in ("population", "tournament", "aging", "mutation", "crossover",
                     "incumbent_evaluations", "racing_fraction", "finalists",
                     "noisy_racing_fraction", "surrogate_candidates")
        if getattr(args, name) != [None])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=HERE).stdout.strip()
    short = [t.split("/")[1][:10] for t in TUNING_TASKS]
    lines = [
        "# Tuning EvolutionOracle's defaults (tuning tasks only)",
        "",
        f"Date {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, commit {commit}, "
        f"{args.seeds} seeds x {args.evals} evaluations, {elapsed:.0f} s on {args.workers} workers.",
        "",
        "Command: `.venv/bin/python benchmarks/tune_evolution.py "
        f"--seeds {args.seeds} --evals {args.evals} --workers {args.workers} {grid_args} "
        f"--output {os.path.relpath(args.output, os.path.dirname(HERE))}`",
        "",
        "Cells: mean regret of the setting / mean regret of the reference regularized evolution "
        "(population 10, sample 3) on each tuning task (< 1: better than the reference). "
        "`wins`: tasks where the ratio is <= 1; `vs random`: mean over tasks of mean regret / "
        "metanas random search's.",
        "",
        "| setting | wins | mean vs ref | vs random | " + " | ".join(short) + " |",
        "|---|---|---|---|" + "---|" * len(short),
    ]
    for neg_wins, ratio, name, vs_ref, vs_rand, _ in rows:
        lines.append(f"| {name} | {-neg_wins}/{len(TUNING_TASKS)} | {ratio:.3f} | "
                     f"{np.mean(vs_rand):.3f} | " + " | ".join(f"{v:.2f}" for v in vs_ref) + " |")
    lines += ["", "The same settings, mean regret / metanas random search's (the bar asks "
              "for at most 0.5 on every tuning task):", "",
              "| setting | " + " | ".join(short) + " |", "|---|" + "---|" * len(short)]
    for _, _, name, _, vs_rand, _ in rows:
        lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in vs_rand) + " |")
    lines += ["", "Reference and random search mean regret per task:", "",
              "| task | ref/regularized-evolution | metanas/random |", "|---|---|---|"]
    for t in TUNING_TASKS:
        lines.append(f"| {t} | {mean[(t, 'ref/regularized-evolution')]:.4g} | "
                     f"{mean[(t, 'metanas/random')]:.4g} |")
    with open(os.path.join(args.output, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
