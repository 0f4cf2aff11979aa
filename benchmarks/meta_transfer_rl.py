"""Warm vs cold start of the RL controller: transfer of a trained policy between similar tasks.

For each tuning task T, the controller (default settings) is trained by one
search on the most similar *other* tuning task with the same search space
(`TransferStore.warm_start(..., exclude_tasks=[T])`, seed 0), its final policy
is kept in a meta storage (`TransferStore.save`), and searches on T start
either from scratch or from that policy (`WarmStart.apply`). A warm controller
samples from its policy at once (``num_initial_points=0``); the cold one is
run both with its default 5 random initial points and with none, so the
comparison is not only about skipping random points.

Usage (the recorded run, see meta_transfer_rl.md):

    python benchmarks/meta_transfer_rl.py --seeds 8 --budget 100
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import subprocess
import sys
import time

import numpy as np


def _quiet():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def source_worker(args):
    """Trains the controller on a source task; returns its record for the store."""
    task_name, budget, storage = args
    _quiet()
    from metanas.bench import load_task
    from metanas.meta import MetaLearner, MetaTask, TransferStore
    from metanas.meta.evaluate import BenchEvaluator, run_search
    from metanas.meta.tasks import bench_features

    task = load_task(task_name)
    evaluator = BenchEvaluator(budget=budget)
    oracle = evaluator.oracle(task, "rl", {}, 0)
    run_search(task, oracle, seed=0, budget=budget)
    TransferStore(MetaLearner(storage)).save(
        MetaTask(task_name, bench_features(task_name, task.hyperparameters())), oracle)
    return task_name


def target_worker(job):
    _quiet()
    from metanas.bench import load_task, summarise_history
    from metanas.meta import MetaLearner, TransferStore
    from metanas.meta.evaluate import BenchEvaluator, curve_score, run_search
    from metanas.meta.tasks import bench_features

    task = load_task(job["task"])
    evaluator = BenchEvaluator(budget=job["budget"])
    settings = {} if job["method"] == "cold (defaults)" else {"num_initial_points": 0}
    oracle = evaluator.oracle(task, "rl", settings, job["seed"])
    source = None
    if job["method"] == "warm (policy)":
        hp = task.hyperparameters()
        start = TransferStore(MetaLearner(job["storage"])).warm_start(
            bench_features(task.name, hp), hyperparameters=hp, exclude_tasks=[task.name])
        assert start.apply(oracle), f"no policy to transfer to {task.name}"
        source = start.source
    history = run_search(task, oracle, seed=job["seed"], budget=job["budget"])
    summary = summarise_history(task, history, evals=job["budget"], use_time=False)
    return {"task": task.name, "method": job["method"], "seed": job["seed"], "source": source,
            "score": curve_score(task.name, summary["curve"], job["budget"]),
            "regret": summary["regret"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--storage", default="sqlite:////tmp/metanas-transfer-rl.db")
    parser.add_argument("--out", default="benchmarks/meta_transfer_rl.md")
    parser.add_argument("--raw", default="benchmarks/meta_transfer_rl.json")
    args = parser.parse_args(argv)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    _quiet()
    from metanas.bench import TUNING_TASKS
    from metanas.meta import MetaLearner

    started = time.time()
    MetaLearner(args.storage)  # the schema, once
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers) as pool:
        pool.map(source_worker, [(t, args.budget, args.storage) for t in TUNING_TASKS])
        methods = ("cold (defaults)", "cold (no random points)", "warm (policy)")
        jobs = [{"task": t, "method": m, "seed": s, "budget": args.budget, "storage": args.storage}
                for t in TUNING_TASKS for m in methods for s in range(100, 100 + args.seeds)]
        results = pool.map(target_worker, jobs, chunksize=2)
    with open(args.raw, "w") as handle:
        json.dump(results, handle, indent=0)
    lines = [
        "# RL controller: warm start from a similar task's policy vs cold start",
        "",
        f"- Command: `python benchmarks/meta_transfer_rl.py {' '.join(argv or sys.argv[1:])}`",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; commit `{commit}`;"
        f" wall time {(time.time() - started) / 60:.1f} min on {args.workers} process(es).",
        f"- {args.budget} evaluations per search, seeds 100..{99 + args.seeds} on the target task; the"
        " source policy from one search (seed 0) on the nearest other tuning task with the same space.",
        "- Score: normalised regret AUC (lower is better; see `metanas.meta.evaluate`), mean ± s.e.;"
        " final regret in table units.",
        "",
        "| target task | source | " + " | ".join(methods) + " | final regret (same order) |",
        "|---|---|" + "---|" * len(methods) + "---|",
    ]
    means = {m: [] for m in methods}
    for task in TUNING_TASKS:
        cells, regrets = [], []
        source = next(r["source"] for r in results if r["task"] == task and r["source"])
        for method in methods:
            rows = [r for r in results if r["task"] == task and r["method"] == method]
            scores = np.array([r["score"] for r in rows])
            means[method].append(scores.mean())
            cells.append(f"{scores.mean():.3f} ± {scores.std(ddof=1) / np.sqrt(len(scores)):.3f}")
            regrets.append(f"{np.mean([r['regret'] for r in rows]):.4g}")
        lines.append(f"| {task} | {source} | " + " | ".join(cells) + " | " + " / ".join(regrets) + " |")
    lines.append("| **mean over tasks** | | " + " | ".join(f"{np.mean(means[m]):.3f}" for m in methods)
                 + " | |")
    wins = sum(w < c for w, c in zip(means["warm (policy)"], means["cold (no random points)"]))
    lines += ["", f"Warm beats the cold controller without random points on {wins}/{len(TUNING_TASKS)}"
              f" tasks; mean ratio warm / cold (defaults) ="
              f" {np.mean(means['warm (policy)']) / np.mean(means['cold (defaults)']):.2f}."]
    with open(args.out, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
