"""Leave-one-task-out evaluation of the meta-layer on the 8 tuning tasks.

For each tuning task T, the meta-layer recommends a strategy and settings from
the meta-trials' results on the 7 other tasks only (`MetaLearner.recommend`
with ``exclude_tasks=[T]``), and the recommendation is raced on T against
each strategy's default settings, against Optuna's TPE sampler, and against a
warm start that transfers evolution's elite from the most similar other task
(`TransferStore`, `exclude_tasks=[T]`), over many seeds not used in
meta-training.

The meta-trials form one candidate pool shared by all folds: they are drawn by
Optuna's *random* sampler, so no candidate was chosen by looking at any
task's results, and a fold's recommendation uses the scores of its 7 training
tasks only; nothing of T leaks into T's recommendation. (TPE-guided
meta-training would need one meta-study per fold: 8 times the compute.)
Several processes meta-train on the one SQLite storage at once.

With ``--held-out`` the same pool (meta-trained on the 8 tuning tasks only)
recommends for the held-out tasks, which nothing was tuned on: they are run
only to report.

Usage (the recorded run; its file, meta_loto.md, gives the command it ran; about
1.5 h on 2 cores; the defaults are a smaller run that writes to the same files):

    python benchmarks/meta_loto.py --storage sqlite:///loto.db --pool local --spread 0.25 \
        --candidates 40 --meta-seeds 48 --budget 100 --eval-seeds 40 --workers 2 \
        --strategies evolution,random --fold-tpe-trials 40 --fold-tpe-near \
        --out benchmarks/meta_loto.md --raw benchmarks/meta_loto.json

With ``--objective final`` every search (meta-training and evaluation) is scored
by the normalised regret of the configuration it returns instead of the area;
the storage must be a new one (one study holds one objective). That run's file,
meta_loto_final.md, gives its command.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import subprocess
import sys
import time
from typing import Any, Dict, List

import numpy as np

EVOLUTION_DEFAULTS: Dict[str, Any] = {}  # EvolutionOracle's constructor defaults
RANDOM_DEFAULTS: Dict[str, Any] = {}


def _quiet():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def meta_worker(args) -> int:
    """One process of the shared meta-training: ``n`` random-sampler meta-trials."""
    storage, worker, n, budget, seeds, strategies, objective = args
    _quiet()
    import optuna
    from metanas.bench import TUNING_TASKS, load_task
    from metanas.meta import MetaLearner
    from metanas.meta.evaluate import BenchEvaluator
    from metanas.meta.tasks import meta_tasks

    learner = MetaLearner(storage, sampler=optuna.samplers.RandomSampler(seed=1000 + worker))
    tasks = meta_tasks(TUNING_TASKS, lambda name: load_task(name).hyperparameters())
    learner.meta_train(tasks, BenchEvaluator(budget=budget, objective=objective), n_trials=n,
                       seeds=tuple(seeds), strategies=tuple(strategies))
    return n


def fold_tpe_worker(args) -> Dict[str, Any]:
    """One fold's own TPE meta-study on the other tasks; returns its recommendation for T."""
    storage, task, n, budget, seeds, strategies, fold, near_only, objective = args
    _quiet()
    from metanas.bench import TUNING_TASKS, load_task
    from metanas.meta import MetaLearner, nearest_tasks
    from metanas.meta.evaluate import BenchEvaluator
    from metanas.meta.tasks import bench_features, meta_tasks

    others = [t for t in TUNING_TASKS if t != task]
    name = f"loto-tpe-{task}"
    if near_only:  # only the training tasks recommend() will average over
        others = nearest_tasks(bench_features(task, load_task(task).hyperparameters()),
                               {t: bench_features(t, load_task(t).hyperparameters()) for t in others}) or others
        name = f"loto-tpe-near-{task}"
    learner = MetaLearner(storage, study_name=name, seed=fold)
    learner.ensure_objective(objective)  # a finished study of another objective is refused
    # Meta-trials left RUNNING or FAIL by an interrupted run do not count.
    missing = n - sum(t.state.name == "COMPLETE" for t in learner.study.trials)
    if missing > 0:
        tasks = meta_tasks(others, lambda name: load_task(name).hyperparameters())
        learner.meta_train(tasks, BenchEvaluator(budget=budget, objective=objective), n_trials=missing,
                           seeds=tuple(seeds), strategies=tuple(strategies))
    features = bench_features(task, load_task(task).hyperparameters())
    choice = learner.recommend(features, strategies=strategies, exclude_tasks=[task])
    return {"task": task, "strategy": choice.strategy, "settings": choice.settings,
            "source": choice.source}


def elite_worker(args) -> Dict[str, Any]:
    """Evolution with its defaults on one task (meta seed); returns the final elite."""
    task_name, budget, seed = args
    _quiet()
    from metanas.meta import elite_of
    from metanas.meta.evaluate import BenchEvaluator

    summary, oracle = BenchEvaluator(budget=budget).run(task_name, "evolution", EVOLUTION_DEFAULTS, seed)
    return {"task": task_name, "elite": elite_of(oracle), "score": summary["score"]}


def eval_worker(job: Dict[str, Any]) -> Dict[str, Any]:
    """One search of one method on the left-out task; its meta-objective and final regret."""
    _quiet()
    from metanas.meta.evaluate import BenchEvaluator, curve_score, final_regret_score

    task, method, seed, budget = job["task"], job["method"], job["seed"], job["budget"]
    start = time.perf_counter()
    if job["strategy"] == "optuna/tpe":
        from metanas.bench import run_one

        result = run_one(task, "optuna/tpe", seed, evals=budget, use_time=False)
        regret = result["regret"]
        score = (final_regret_score(task, regret) if job["objective"] == "final"
                 else curve_score(task, result["curve"], budget))
    else:
        summary, _ = BenchEvaluator(budget=budget, objective=job["objective"]).run(
            task, job["strategy"], job["settings"], seed, initial_hps=job.get("initial_hps")
        )
        score, regret = summary["score"], summary["regret"]
    return {"task": task, "method": method, "seed": seed, "score": score, "regret": regret,
            "wall_s": time.perf_counter() - start}


def _pool(workers):
    return multiprocessing.get_context("spawn").Pool(workers)


def main(argv=None) -> int:
    from metanas.meta.learner import OBJECTIVES

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--storage", default="sqlite:///benchmarks/meta_loto.db")
    parser.add_argument("--candidates", type=int, default=24, help="meta-trials in the pool")
    parser.add_argument("--meta-seeds", type=int, default=2, help="seeds per task and meta-trial")
    parser.add_argument("--budget", type=int, default=100, help="evaluations per search")
    parser.add_argument("--eval-seeds", type=int, default=10, help="seeds per method on T")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", default=None, help="comma-separated subset of the tuning tasks")
    parser.add_argument("--strategies", default="evolution,random",
                        help="the meta space's strategies (rl: ~5x slower per search on a table)")
    parser.add_argument("--fold-tpe-trials", type=int, default=0,
                        help="also meta-train one TPE study per fold (on its 7 training tasks"
                             " only) with this many meta-trials, and race its recommendation")
    parser.add_argument("--held-out", action="store_true",
                        help="evaluate on the held-out tasks (recommendations from all 8 tuning tasks)")
    parser.add_argument("--pool", choices=("random", "local"), default="random",
                        help="candidates: Optuna random-sampler draws over the whole meta space,"
                             " or points around evolution's defaults (around_defaults)")
    parser.add_argument("--spread", type=float, default=0.25,
                        help="with --pool local: step size as a fraction of each setting's range")
    parser.add_argument("--fold-tpe-near", action="store_true",
                        help="each fold's TPE study meta-trains on the training tasks most similar to"
                             " the left-out one only (nearest_tasks: those recommend() averages over)")
    parser.add_argument("--objective", choices=OBJECTIVES, default="auc",
                        help="the meta-objective (BenchEvaluator's): regret area (auc) or the"
                             " returned configuration's regret (final); one storage holds one")
    parser.add_argument("--out", default="benchmarks/meta_loto.md")
    parser.add_argument("--raw", default="benchmarks/meta_loto.json")
    args = parser.parse_args(argv)
    args.commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip()
    _quiet()
    from metanas.bench import HELD_OUT_TASKS, TUNING_TASKS, load_task
    from metanas.meta import MetaLearner, MetaTask, TransferStore
    from metanas.meta.transfer import space_config
    from metanas.meta.tasks import bench_features

    tasks = args.tasks.split(",") if args.tasks else list(
        HELD_OUT_TASKS if args.held_out else TUNING_TASKS)
    strategies = args.strategies.split(",")
    started = time.time()
    learner = MetaLearner(args.storage)
    learner.ensure_objective(args.objective)  # one study holds one objective
    meta_seeds = list(range(args.meta_seeds))
    # 1. The shared candidate pool, meta-trained by several processes on one storage.
    have = len(learner.study.trials)
    if args.pool == "local" and have:
        print(f"--pool local: the storage has {have} meta-trials already; reusing them as they are",
              file=sys.stderr)
    if args.pool == "local" and have == 0 and args.candidates > len(strategies):
        # Each strategy's defaults (meta_train queues them) plus points around evolution's.
        learner.enqueue_around_defaults("evolution", n=args.candidates - len(strategies),
                                        spread=args.spread, seed=0)
    missing = max(0, args.candidates - have)
    if missing:
        shares = [missing // args.workers + (i < missing % args.workers) for i in range(args.workers)]
        with _pool(args.workers) as pool:
            pool.map(meta_worker, [(args.storage, have + i, n, args.budget, meta_seeds, strategies,
                                    args.objective)
                                   for i, n in enumerate(shares) if n])
    learner = MetaLearner(args.storage)
    print(f"pool: {len(learner.study.trials)} meta-trials ({time.time() - started:.0f} s)", file=sys.stderr)
    # 2. Evolution's elite per task (meta seed 0), kept in the same storage.
    store = TransferStore(learner)
    known = store.records()
    todo = [t for t in TUNING_TASKS if t not in known]
    if todo:
        with _pool(args.workers) as pool:
            for result in pool.map(elite_worker, [(t, args.budget, 0) for t in todo]):
                name = result["task"]
                space = load_task(name).hyperparameters()
                store.put(MetaTask(name, bench_features(name, space)), elite=result["elite"],
                          space=[hp.name for hp in space.space], strategy="EvolutionOracle",
                          definitions=space_config(space))
    # 2b. Optionally one TPE meta-study per fold, on its training tasks only.
    fold_tpe = {}
    if args.fold_tpe_trials > 0:
        with _pool(args.workers) as pool:
            for result in pool.map(fold_tpe_worker, [
                (args.storage, t, args.fold_tpe_trials, args.budget, meta_seeds, strategies, i,
                 args.fold_tpe_near, args.objective)
                for i, t in enumerate(tasks)
            ], chunksize=1):
                fold_tpe[result["task"]] = result
    # 3. Per left-out task: recommendation (7 other tasks), transfer, and the jobs.
    jobs, choices = [], {}
    eval_seeds = list(range(100, 100 + args.eval_seeds))
    for task in tasks:
        hp = load_task(task).hyperparameters()
        features = bench_features(task, hp)
        choice = learner.recommend(features, strategies=strategies, exclude_tasks=[task])
        untested = learner.recommend(features, strategies=strategies, exclude_tasks=[task],
                                     alpha=None)
        start = store.warm_start(features, hyperparameters=hp, exclude_tasks=[task])
        choices[task] = {"strategy": choice.strategy, "settings": choice.settings,
                         "source": choice.source, "transfer_from": start.source,
                         "untested": {"strategy": untested.strategy, "settings": untested.settings,
                                      "source": untested.source}}
        tpe_choice = fold_tpe.get(task)
        if tpe_choice:
            choices[task]["fold_tpe"] = tpe_choice
        methods = {
            "recommended": (choice.strategy, choice.settings, None),
            "recommended (best candidate, untested)": (untested.strategy, untested.settings, None),
            **({"recommended (TPE per fold)": (tpe_choice["strategy"], tpe_choice["settings"], None)}
               if tpe_choice else {}),
            "evolution defaults": ("evolution", EVOLUTION_DEFAULTS, None),
            "random defaults": ("random", RANDOM_DEFAULTS, None),
            "rl defaults": ("rl", {}, None),  # raced even when rl is not in the meta space
            "optuna TPE": ("optuna/tpe", {}, None),
            "evolution defaults + elite": ("evolution", EVOLUTION_DEFAULTS, start.elite or None),
        }
        for method, (strategy, settings, elite) in methods.items():
            for seed in eval_seeds:
                jobs.append({"task": task, "method": method, "strategy": strategy,
                             "settings": settings, "initial_hps": elite, "seed": seed,
                             "budget": args.budget, "objective": args.objective})
    with _pool(args.workers) as pool:
        results = pool.map(eval_worker, jobs, chunksize=4)
    elapsed = time.time() - started
    with open(args.raw, "w") as handle:
        json.dump({"choices": choices, "results": results}, handle, indent=0, default=str)
    write_report(args, argv, tasks, choices, results, elapsed, len(learner.study.trials))
    return 0


def _mean_se(values):
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def _settings_text(settings) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in settings.items())


def write_report(args, argv, tasks, choices, results, elapsed, n_meta) -> None:
    methods = list(dict.fromkeys(r["method"] for r in results))
    row = "held-out task" if args.held_out else "left-out task"
    commit = args.commit
    command = "python benchmarks/meta_loto.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "# Meta-layer: " + ("recommendations for the held-out tasks (pool meta-trained on the tuning"
                            " tasks only)" if args.held_out else "leave-one-task-out over the tuning tasks"),
        "",
        f"- Command: `{command.strip()}`",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; commit `{commit}`"
        " (the commit the run started from; this file was committed after it)",
        f"- Meta-training: one shared pool of {n_meta} meta-trials: "
        + ("each strategy's defaults, then points around evolution's defaults (`around_defaults(\"evolution\","
           f" spread={args.spread}, seed=0)`: each setting moved with probability 1/2)"
           if args.pool == "local" else
           f"each strategy's defaults, then Optuna random-sampler draws over the strategies ({args.strategies})"
           " and their settings")
        + f", each scored on all 8 tuning tasks with"
        f" {args.meta_seeds} seed(s) (seeds 0..{args.meta_seeds - 1}); "
        + ("the held-out tasks are in no meta-trial." if args.held_out else
           "a fold's recommendation uses only its 7 training tasks' scores."),
        f"- Evaluation: {args.budget} evaluations per search, {args.eval_seeds} seeds per method"
        f" (seeds 100..{99 + args.eval_seeds}, not used in meta-training); wall time {elapsed / 60:.1f} min"
        f" on {args.workers} worker processes.",
        ("- Score: the meta-objective, normalised regret AUC (mean best-so-far regret over the budget,"
         " in units of the table's median regret; lower is better, 1 = one typical random guess),"
         if args.objective == "auc" else
         "- Score: the meta-objective `objective=\"final\"`: the final regret of the configuration the"
         " search returns, in units of the table's median regret (lower is better, 1 = one typical"
         " random guess); meta-training and every comparison use it,")
        + " mean ± standard error over seeds; and the final regret of the incumbent (table units).",
        "- Methods: *recommended* = `MetaLearner.recommend(features, exclude_tasks=[T])` (on the 3 most"
        " similar training tasks within the distance limit: the candidate with the best mean over the first half of"
        " the meta-seeds, if it beats evolution's defaults on the second half, one-sided paired test at"
        " alpha=0.05; else those defaults); *recommended (best candidate, untested)* = the same"
        " with `alpha=None` (the best candidate, always);"
        + (f" *recommended (TPE per fold)* = the same call on a fold's own meta-study: Optuna's"
           f" multivariate TPE, {args.fold_tpe_trials} meta-trials on "
           + ("the fold's training tasks nearest to T (the ones `recommend` averages over) only;"
              if args.fold_tpe_near else "the fold's 7 training tasks only;")
           if args.fold_tpe_trials > 0 else "")
        + " *defaults* = the strategy's constructor defaults; *optuna TPE* = `TPESampler(seed)` run"
        " through Optuna; *elite* = evolution's defaults started from the final elite of the most"
        " similar other task with the same space (`TransferStore.warm_start(..., exclude_tasks=[T])`),"
        " that elite from one evolution run (seed 0) per task.",
    ]
    if "rl" not in args.strategies.split(","):
        lines.append(
            "- The RL controller is not in this run's meta space: on a table one controller search costs"
            " about 20 times an evolution search (about 4 s against 0.2 s per 100 evaluations, unloaded),"
            " beyond this run's compute on 2 shared cores. Its policy transfer is measured in"
            " `meta_transfer_rl.md`."
        )
    lines += [
        "",
        "## Meta-objective (" + ("normalised regret AUC" if args.objective == "auc" else
                                 "normalised final regret") + ", lower is better)",
        "",
        f"| {row} | " + " | ".join(methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    per_method_task = {}
    for task in tasks:
        cells = []
        for method in methods:
            values = [r["score"] for r in results if r["task"] == task and r["method"] == method]
            mean, se = _mean_se(values)
            per_method_task[(method, task)] = mean
            cells.append(f"{mean:.3f} ± {se:.3f}")
        best = min(range(len(methods)), key=lambda i: per_method_task[(methods[i], task)])
        cells[best] = f"**{cells[best]}**"
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    means = {m: float(np.mean([per_method_task[(m, t)] for t in tasks])) for m in methods}
    lines.append("| **mean over tasks** | " + " | ".join(f"{means[m]:.3f}" for m in methods) + " |")
    lines += ["", "## Final regret of the incumbent (mean over seeds, table units)", "",
              f"| {row} | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for task in tasks:
        cells = []
        for method in methods:
            values = [r["regret"] for r in results if r["task"] == task and r["method"] == method]
            cells.append(f"{np.mean(values):.4g}")
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    lines += ["", "## Head to head (meta-objective, per task: who has the lower mean)", ""]
    for mine in [m for m in methods if m.startswith("recommended")]:
        for other in [m for m in methods if not m.startswith("recommended")]:
            wins = sum(per_method_task[(mine, t)] < per_method_task[(other, t)] for t in tasks)
            ratio = means[mine] / means[other] if means[other] > 0 else float("nan")
            lines.append(f"- {mine} vs {other}: better on {wins}/{len(tasks)} tasks;"
                         f" mean-over-tasks ratio {ratio:.2f}")
    if "evolution defaults + elite" in methods:
        wins = sum(per_method_task[("evolution defaults + elite", t)] < per_method_task[("evolution defaults", t)]
                   for t in tasks)
        lines.append(f"- transfer (elite warm start) vs cold evolution defaults: better on {wins}/{len(tasks)}"
                     f" tasks; mean-over-tasks ratio"
                     f" {means['evolution defaults + elite'] / means['evolution defaults']:.2f}")
    lines += ["", "## What was recommended", "", f"| {row} | strategy | settings | from | elite from |",
              "|---|---|---|---|---|"]
    for task in tasks:
        c = choices[task]
        lines.append(f"| {task} | {c['strategy']} | {_settings_text(c['settings'])} | {c['source']}"
                     f" | {c['transfer_from']} |")
        u = c.get("untested")
        if u and (u["strategy"], u["settings"]) != (c["strategy"], c["settings"]):
            lines.append(f"| {task} (untested best) | {u['strategy']} | {_settings_text(u['settings'])}"
                         f" | {u['source']} | |")
        if "fold_tpe" in c:
            t = c["fold_tpe"]
            lines.append(f"| {task} (TPE per fold) | {t['strategy']} | {_settings_text(t['settings'])}"
                         f" | {t['source']} | |")
    with open(args.out, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
