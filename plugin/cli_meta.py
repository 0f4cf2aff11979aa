"""`metanas meta-train` and `metanas recommend`: the meta-layer on the command line.

Heavy imports (Optuna, keras-tuner, the benchmark tables) happen inside the
commands, so `metanas --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from typing import Optional

from metanas.security import redact, sqlite_file, sqlite_in_memory, sqlite_problem
from metanas.usage import UsageError, check_output_directory, check_seed

__all__ = ["add_meta_train", "add_recommend"]

#: `meta-train`'s --budget and --strategies for a new study (an existing one keeps its own).
DEFAULT_BUDGET = 50
DEFAULT_STRATEGIES = "evolution,random"


def _task_names(values, flag: str = "--tasks", groups: bool = True):
    """The benchmark task names in ``values`` (``flag``'s), unique; with ``groups``,
    ``tuning`` stands for the tuning tasks (a flag of one task takes none)."""
    from metanas.bench import TASK_NAMES, TUNING_TASKS

    names = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if name == "tuning" and groups:
                names.extend(TUNING_TASKS)
            elif name:
                if name not in TASK_NAMES:
                    raise UsageError(
                        f"{flag}: unknown task {name!r}; known tasks: "
                        + ("'tuning' or " if groups else "") + ", ".join(TASK_NAMES)
                    )
                names.append(name)
    if not names:
        raise UsageError(f"{flag} needs at least one task, got {', '.join(values)!r}")
    return list(dict.fromkeys(names))


class _NotAnInterrupt(logging.Filter):
    """Drops Optuna's records of an interrupted meta-trial (Ctrl-C, SIGTERM): the
    one with the traceback, and the "Trial N failed with value None." after it."""

    def __init__(self) -> None:
        super().__init__()
        self._interrupted: Optional[str] = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt):
            self._interrupted = record.getMessage().split(" failed with ")[0]  # "Trial N"
            return False
        if self._interrupted and record.getMessage().startswith(
                f"{self._interrupted} failed with value"):
            self._interrupted = None
            return False
        return True


_NOT_AN_INTERRUPT = _NotAnInterrupt()  # one (a logger keeps each filter added)


def _usage(error: Exception) -> UsageError:
    """A library error as a command-line one: its keyword named as the flag."""
    text = str(error).replace("(study_name)", "(--study-name)")
    return UsageError("--" + text if text.startswith("storage must be") else text)


def _check_storage(url: str, journal: bool = True) -> None:
    """Refuses, before it is opened, a meta storage the command cannot keep or write.

    An in-memory SQLite database (``sqlite://``, ``sqlite:///:memory:``) is gone
    when the command ends; a SQLite file that is not writable fails Optuna's
    opening of it with a misleading message ("exceeding max length"), and so
    does a read-only folder a command that writes (``journal``: meta-train)
    needs for SQLite's journal.

    Raises:
        UsageError: ``url`` is an in-memory database, or its SQLite file (or,
            with ``journal``, the folder that holds or would hold it) is
            read-only, or (with ``journal``) that folder does not exist.
    """
    if sqlite_in_memory(url):
        raise UsageError(f"--storage: {redact(url)!r} is an in-memory database, which keeps "
                         "nothing after the command; give a file (sqlite:///path.db) or a "
                         "server URL")
    path = sqlite_file(url)
    if journal and path is not None and not os.path.isdir(os.path.dirname(path)):
        # SQLite creates the file, not its folder: "unable to open database file".
        raise UsageError(f"--storage: the folder {os.path.dirname(path)!r} of the meta storage "
                         "does not exist (create it, or check the path)")
    problem = sqlite_problem(url, journal=journal)
    if problem is not None:
        advice = ("give the database file" if problem.endswith("not a SQLite database file")
                  else "copy it somewhere writable")
        raise UsageError(f"--storage: the meta storage {problem} ({advice})")


def _learner(storage, study_name, **kwargs):
    from metanas.meta import MetaLearner

    try:
        return MetaLearner(storage, study_name=study_name, **kwargs)
    except ValueError as error:
        raise _usage(error) from None


def _strategies(value):
    from metanas.meta import strategy_classes

    names = [s.strip() for s in value.split(",") if s.strip()]
    known = strategy_classes()
    if not names:
        raise UsageError(f"--strategies needs at least one strategy, got {value!r}; allowed: "
                         f"{', '.join(sorted(known))}")
    unknown = [s for s in names if s not in known]
    if unknown:
        raise UsageError(f"unknown strategies {unknown}; allowed: {', '.join(sorted(known))}")
    return names


class _Progress:
    """A progress bar over meta-trials on stderr (tqdm's; Optuna depends on it)."""

    def __init__(self, total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="meta-trials", unit="trial", file=sys.stderr,
                        dynamic_ncols=True)

    def __call__(self, study, trial) -> None:
        self.bar.update(1)
        try:
            self.bar.set_postfix(best=f"{study.best_value:.4f}", last=f"{trial.value:.4f}")
        except ValueError:  # no finished meta-trial yet
            pass

    def close(self) -> None:
        self.bar.close()


def _similar_tasks(target: str, names, k: int):
    """The ``k`` of ``names`` nearest to benchmark task ``target`` (all of them if none is near)."""
    if k < 1:
        raise UsageError(f"--k must be >= 1, got {k}")
    if not target.strip():
        raise UsageError("--similar-to needs a task name")
    targets = _task_names([target], "--similar-to")
    if len(targets) != 1:
        raise UsageError(f"--similar-to takes one task, got {target!r}")
    target = targets[0]
    from metanas.bench import load_task
    from metanas.meta import nearest_tasks
    from metanas.meta.tasks import bench_features

    def features(name):
        return bench_features(name, load_task(name).hyperparameters())

    others = [n for n in names if n != target]  # _task_names: unique already
    if not others:
        raise UsageError(f"--tasks holds no task other than {target!r} to meta-train on")
    near = nearest_tasks(features(target), {n: features(n) for n in others}, k=k)
    chosen = near or others
    print(f"metanas meta-train: tasks similar to {target}: {', '.join(chosen)}"
          + ("" if near else " (none within the distance limit: all of --tasks)"), file=sys.stderr)
    return chosen


def add_meta_train(subparsers) -> None:
    parser = subparsers.add_parser(
        "meta-train",
        help="meta-train: learn which strategy and settings search best on benchmark tasks",
    )
    parser.add_argument("--tasks", nargs="+", required=True,
                        help="benchmark task names (comma or space separated), or 'tuning'")
    parser.add_argument("--similar-to", default=None, metavar="TASK",
                        help="meta-train only on the --tasks nearest to TASK by meta-features (as"
                             " `recommend` finds similar tasks: within its distance limit, 0.5;"
                             " all of --tasks if none is; TASK itself excluded)")
    parser.add_argument("--k", type=int, default=None,
                        help="with --similar-to: at most how many tasks (3; fewer when fewer are "
                             "within the distance limit)")
    parser.add_argument("--budget", type=int, default=None,
                        help="evaluations per search; a study keeps that of its first "
                             f"meta-training (default: the study's; {DEFAULT_BUDGET} for a new "
                             "study)")
    parser.add_argument("--meta-trials", type=int, default=20, help="meta-trials to add")
    parser.add_argument("--objective", default="auc",
                        help="meta-objective: auc (normalised regret area under the best-so-far"
                             " curve, anytime) or final (normalised regret of the returned"
                             " configuration); one study holds one")
    parser.add_argument("--storage", default="sqlite:///metanas-meta.db",
                        help="Optuna storage URL (any RDB URL; shared by every process)")
    parser.add_argument("--study-name", default="metanas-meta",
                        help="the meta-study's name in the storage")
    parser.add_argument("--seeds", type=int, default=1, help="searches per task and meta-trial")
    parser.add_argument("--strategies", default=None,
                        help="comma-separated, of evolution, random, rl; a study keeps those "
                             f"of its first meta-training (default: the study's; "
                             f"{DEFAULT_STRATEGIES} for a new study)")
    parser.add_argument("--sampler", choices=("tpe", "random"), default="tpe",
                        help="the meta-sampler (Optuna)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the meta-sampler")
    parser.add_argument("--plots", default=None,
                        help="directory for PNG plots of the meta-study (history, importances)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--mlflow", action=argparse.BooleanOptionalAction, default=True,
        help="with --plots, also log the plots and the study's summary to MLflow "
             "(MLFLOW_TRACKING_URI, else ./mlflow.db; default: on)",
    )

    def run(args) -> int:
        if args.budget is not None and args.budget < 2:
            raise UsageError(f"--budget must be >= 2, got {args.budget}")
        if args.meta_trials < 1 or args.seeds < 1:
            raise UsageError(f"--meta-trials and --seeds must be >= 1, got "
                             f"{args.meta_trials} and {args.seeds}")
        if args.objective not in ("auc", "final"):  # metanas.meta.OBJECTIVES, not imported yet
            raise UsageError(f"--objective must be auc or final, got {args.objective!r}")
        check_seed("--seed", args.seed)
        names = _task_names(args.tasks)
        if args.similar_to is None and args.k is not None:
            raise UsageError("--k needs --similar-to")
        if args.similar_to is not None:
            names = _similar_tasks(args.similar_to, names, 3 if args.k is None else args.k)
        strategies = None if args.strategies is None else _strategies(args.strategies)
        _check_storage(args.storage)
        if args.plots is not None:  # made now, before the storage is opened and the searches run
            check_output_directory("--plots", args.plots)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        # Ctrl-C fails the running meta-trial; Optuna would log it with a traceback.
        logging.getLogger("optuna.study._optimize").addFilter(_NOT_AN_INTERRUPT)
        learner = _learner(args.storage, args.study_name, sampler=args.sampler, seed=args.seed)
        from metanas.meta.learner import (BUDGET_KEY, ObjectiveError, StrategyError, best_of,
                                          meta_trained, scored_with)

        # Omitted, --strategies and --budget are the study's (the defaults for a new one).
        if strategies is None:
            strategies = list(learner.strategy_choices() or DEFAULT_STRATEGIES.split(","))
        budget = args.budget
        if budget is None:
            budget = learner.study.user_attrs.get(BUDGET_KEY) or DEFAULT_BUDGET
        try:
            learner.check_strategies(strategies)
            learner.ensure_objective(args.objective)
            learner.ensure_budget(budget)
        except (ObjectiveError, StrategyError) as error:
            raise _usage(error) from None
        from metanas.bench import load_task
        from metanas.meta.evaluate import BenchEvaluator
        from metanas.meta.tasks import meta_tasks

        tasks = meta_tasks(names, lambda n: load_task(n).hyperparameters())
        progress = None if args.no_progress else _Progress(args.meta_trials)
        try:
            learner.meta_train(
                tasks, BenchEvaluator(budget=budget, objective=args.objective),
                n_trials=args.meta_trials,
                seeds=tuple(range(args.seeds)), strategies=strategies,
                callbacks=[progress] if progress else (),
            )
        except (ObjectiveError, StrategyError) as error:  # another process claimed the study
            raise _usage(error) from None
        finally:
            if progress:
                progress.close()
        # (Not a recorded production search: it was reported as the study's best.)
        scored = [t for t in meta_trained(learner.study) if scored_with(t) == args.objective]
        best = best_of(learner.study, scored)  # (None: all failed)
        print(json.dumps({"meta_trials": len(scored), "objective": args.objective,
                          "best_value": best and best.value,
                          "best_params": best and best.params}, default=str))
        if args.plots is not None:
            from metanas.meta.plots import log_meta_study, plot_meta_study

            paths = plot_meta_study(learner.study, args.plots)
            for path in paths:
                print(path)
            if args.mlflow:
                log_meta_study(learner.study, paths, storage=args.storage)
        return 0

    parser.set_defaults(func=run, on_interrupt="its completed meta-trials are kept in --storage: "
                                                "meta-train again to go on from them")


def add_recommend(subparsers) -> None:
    parser = subparsers.add_parser(
        "recommend", help="the strategy and settings the meta-layer recommends for a task"
    )
    parser.add_argument("--task", required=True, help="a benchmark task name")
    parser.add_argument("--storage", default="sqlite:///metanas-meta.db",
                        help="Optuna storage URL of the meta-study")
    parser.add_argument("--study-name", default="metanas-meta",
                        help="the meta-study's name in the storage")
    parser.add_argument("--strategies", default=None, help="only these (comma-separated)")
    parser.add_argument("--exclude-task", action="store_true",
                        help="ignore the task's own meta-trials (leave-one-task-out)")

    def run(args) -> int:
        names = _task_names([args.task], "--task", groups=False)
        if len(names) != 1:
            raise UsageError(f"--task takes one task, got {args.task!r}")
        name = names[0]
        strategies = _strategies(args.strategies) if args.strategies else None
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # "Using an existing study..."
        _check_storage(args.storage, journal=False)  # reads: a read-only folder will do
        path = sqlite_file(args.storage)
        if path is not None and not os.path.exists(path):  # a typo: make no empty database
            raise UsageError(f"--storage: no meta storage at {path!r} (meta-train into it "
                             "first, or check the path)")
        learner = _learner(args.storage, args.study_name, create=False)
        if strategies is not None and learner.strategy_choices():
            from metanas.meta.learner import StrategyError

            try:
                learner.check_strategies(strategies)
            except StrategyError as error:
                raise _usage(error) from None
        from metanas.bench import load_task
        from metanas.meta.tasks import bench_features

        features = bench_features(name, load_task(name).hyperparameters())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            choice = learner.recommend(
                features, strategies=strategies, exclude_tasks=[name] if args.exclude_task else ()
            )
        for warning in caught:
            print(f"metanas recommend: warning: {warning.message}", file=sys.stderr)
        print(json.dumps({"task": name, "strategy": choice.strategy, "settings": choice.settings,
                          "source": choice.source, "expected": choice.expected,
                          "objective": learner.objective}, default=str))
        return 0

    parser.set_defaults(func=run)
