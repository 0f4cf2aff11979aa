"""``metanas bench``: run the benchmark and write its raw results, tables and plots."""

from __future__ import annotations

import contextlib
import datetime
import functools
import os
import re
import shlex
import subprocess
import sys
import time
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ["add_bench", "parse_limits", "resolve_tasks", "resolve_strategies", "run_bench"]


#: Each finished run is appended here at once; rerunning the same command
#: after an interruption picks them up, and a finished run deletes the file.
PARTIAL_FILE = "raw.partial.jsonl"

#: Lines of `PARTIAL_FILE` that are not finished runs (torn by a kill, edited)
#: are kept here, as they were, when that file is rewritten or removed.
UNREADABLE_FILE = "raw.partial.unreadable"
#: Held by the ``metanas bench`` writing to the output directory.
LOCK_FILE = ".bench.lock"


def _usage_error(message: str):
    from metanas.usage import UsageError

    return UsageError(message)


def resolve_tasks(text: str, flag: str = "--tasks") -> List[str]:
    """Task names from ``all``, ``tuning``, ``held-out`` or a comma-separated list."""
    from metanas.bench.tasks import HELD_OUT_TASKS, TASK_NAMES, TUNING_TASKS

    groups = {"all": TASK_NAMES, "tuning": TUNING_TASKS, "held-out": HELD_OUT_TASKS}
    given = [n.strip() for n in text.split(",") if n.strip()]
    names = [task for n in given for task in groups.get(n, [n])]  # groups may be in a list
    unknown = [n for n in names if n not in TASK_NAMES]
    if not names or unknown:
        raise _usage_error(
            f"{flag}: unknown task(s) {unknown or [text]}; use all, tuning, held-out or "
            f"names from {', '.join(TASK_NAMES)}"
        )
    _refuse_repeats(flag, names)
    return names


def _refuse_repeats(flag: str, names: Sequence[str]) -> None:
    """A name given twice would run twice and count twice in the tests."""
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise _usage_error(f"{flag}: {', '.join(repeated)} given more than once")


def resolve_strategies(text: str, multi_objective: bool) -> List[str]:
    """Strategy names from ``all`` or a comma-separated list."""
    from metanas.bench.strategies import MULTI_OBJECTIVE_STRATEGIES, STRATEGIES

    known = MULTI_OBJECTIVE_STRATEGIES if multi_objective else STRATEGIES
    if text.strip() == "all":
        return list(known)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        raise _usage_error(
            f"--strategies: unknown strategy(ies) {unknown or [text]}; known: {', '.join(known)}"
        )
    _refuse_repeats("--strategies", names)
    return names


def parse_limits(items: Sequence[str], strategies: Sequence[str],
                 tasks: Optional[Sequence[str]] = None) -> Dict[str, Tuple[int, Optional[List[str]]]]:
    """``STRATEGY=SEEDS[@TASK,TASK...]`` items -> ``{strategy: (seeds, tasks or None)}``.

    The tasks after ``@`` must be among ``tasks`` (those being run), if given.
    """
    limits: Dict[str, Tuple[int, Optional[List[str]]]] = {}
    for item in items:
        name, sep, rest = item.partition("=")
        seeds_text, at, tasks_text = rest.partition("@")
        if (not sep or name not in strategies or not re.fullmatch(r"[0-9]+", seeds_text)
                or int(seeds_text) < 1 or (at and not tasks_text.strip(", "))):
            which = (f" ({name!r} is not one of the strategies being run: "
                     f"{', '.join(strategies)})" if sep and name not in strategies else "")
            raise _usage_error(
                f"--limit {item!r}: expected STRATEGY=SEEDS[@TASK,...] with a strategy being "
                f"run, SEEDS >= 1 and, after @, at least one task{which}"
            )
        if name in limits:
            raise _usage_error(f"--limit: {name} is limited more than once")
        only = resolve_tasks(tasks_text, flag=f"--limit {item!r}") if at else None
        outside = [t for t in only or () if tasks is not None and t not in tasks]
        if outside:
            raise _usage_error(f"--limit {item!r}: {', '.join(outside)} not among the tasks "
                               f"being run (--tasks)")
        limits[name] = (int(seeds_text), only)
    return limits


def _kept(output: str) -> str:
    """What an interrupted or failed ``metanas bench`` kept, and how to go on."""
    from metanas.bench.report import load_partial

    partial = os.path.join(output, PARTIAL_FILE)
    if not os.path.exists(partial):
        return "no run had finished"
    try:
        done = f"{len(load_partial(partial))} finished run(s)"
    except (OSError, ValueError):  # not readable: say where the runs are all the same
        done = "the finished runs are"
    return f"{done} kept in {partial}: the same command goes on from them"


def _keep_other_results(raw: str, results) -> None:
    """Moves aside an earlier ``raw`` holding runs that ``results`` does not.

    An ``--output`` reused for other settings (other tasks, strategies,
    seeds, a newer version of a strategy) would lose the earlier results;
    they are kept as ``raw.<UTC time>.json.gz`` beside it, and said so.
    """
    from metanas.bench import report

    if not os.path.exists(raw):
        return
    try:
        earlier = report.load_results(raw)
    except ValueError:
        earlier = None  # not a results file: kept all the same
    if earlier is not None:
        new = {report.job_key(r) for r in results}
        if all(report.job_key(r) in new for r in earlier):
            return  # every earlier run is among the new results
    stamp = f"{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%S}"
    kept = os.path.join(os.path.dirname(raw), f"raw.{stamp}.json.gz")
    number = 1
    while os.path.exists(kept):  # (another kept in the same second: not overwritten)
        number += 1
        kept = os.path.join(os.path.dirname(raw), f"raw.{stamp}-{number}.json.gz")
    os.replace(raw, kept)
    print(f"metanas bench: the earlier {raw} holds runs these results do not; kept as {kept}",
          flush=True)


def _commit() -> str:
    """metanas's version and, when it runs from a metanas checkout, the commit."""
    from metanas import __version__

    version = f"metanas {__version__}"
    here = os.path.dirname(os.path.abspath(__file__))

    def git(*args: str) -> Optional[str]:
        out = subprocess.run(["git", *args], capture_output=True, text=True, cwd=here,
                             timeout=10)
        return out.stdout.strip() if out.returncode == 0 else None

    try:
        top = git("rev-parse", "--show-toplevel")
        # Only a checkout of metanas itself: an installed copy may sit inside
        # another project's repository.
        mine = os.path.join(top or "", "plugin", "bench", os.path.basename(__file__))
        if not top or not os.path.exists(mine) or not os.path.samefile(mine, __file__):
            return version
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return version
    if not commit:
        return version
    return f"{commit}{'+uncommitted' if dirty else ''} ({version})"


class OutputBusyError(RuntimeError):
    """Another ``metanas bench`` is writing to the same output directory."""


@contextlib.contextmanager
def _output_lock(output: str):
    """Holds ``output``'s lock file for one ``metanas bench`` at a time: two
    writing one output lost each other's finished runs (a review's finding)."""
    from metanas import locks

    os.makedirs(output, exist_ok=True)
    path = os.path.join(output, LOCK_FILE)
    try:
        handle = open(path, "a+b")  # (NFS locks only a file open for writing)
    except PermissionError:  # another user's, in a folder all may write to: read-only
        handle = open(path, "rb")
    with handle:
        try:
            locks.lock(handle, wait=False)
        except BlockingIOError:
            raise OutputBusyError(
                f"another metanas bench is writing to {output!r}; wait for it to end, "
                "or give this one another --output") from None
        except OSError as error:  # a file system without locks (some NFS, FUSE)
            warnings.warn(f"could not lock {path} ({error}); two metanas bench writing to "
                          f"{output!r} would lose each other's finished runs", stacklevel=3)
        else:
            locks.unguarded(f"two metanas bench writing to {output!r} would lose each "
                            "other's finished runs")
        yield


def _locking_output(function):
    """``function(output=..., ...)`` run holding ``output``'s lock (`_output_lock`)."""

    @functools.wraps(function)
    def locked(*, output: str, **settings):
        with _output_lock(output):
            return function(output=output, **settings)

    return locked


@_locking_output
def run_bench(*, tasks: Sequence[str], strategies: Sequence[str], seeds: int, evals: int,
              workers: int, output: str, limits=None, reuse: Sequence[str] = (),
              multi_objective: bool = False, command: str = "", plots: bool = True,
              first_seed: int = 0, strategy_modules: Sequence[str] = ()) -> str:
    """Runs the benchmark and writes ``raw.json.gz``, ``report.md`` and plots to ``output``.

    ``strategy_modules`` are imported first, here and in every worker process:
    modules that add strategies with `metanas.bench.register_strategy`. One
    ``metanas bench`` writes to an ``output`` at a time (a lock file in it).

    Returns the path of the report.

    Raises:
        OutputBusyError: Another ``metanas bench`` is writing to ``output``.
    """
    from metanas.bench import report
    from metanas.bench.runner import NOISE_PROTOCOL, import_modules, run_many
    from metanas.bench.strategies import MULTI_OBJECTIVE_STRATEGIES, STRATEGIES

    import_modules(strategy_modules)
    known = MULTI_OBJECTIVE_STRATEGIES if multi_objective else STRATEGIES
    limits = limits or {}
    jobs = []
    for task in tasks:
        for strategy in strategies:
            n, only = limits.get(strategy, (seeds, None))
            if only is not None and task not in only:
                continue
            for seed in range(first_seed, first_seed + n):
                jobs.append({"task_name": task, "strategy": strategy, "seed": seed,
                             "evals": evals, "multi_objective": multi_objective})

    def key(job):  # a run of another version of its strategy or of the noise is not this one
        return report.job_key(dict(job, strategy_version=known[job["strategy"]].version,
                                   noise_protocol=NOISE_PROTOCOL))

    wanted = {key(j) for j in jobs}
    cached = {}
    stale = set()
    for path in reuse:
        for r in report.load_results(path):
            cached[report.job_key(r)] = r
            if (r["strategy"] in known and report.job_key(r) not in wanted
                    and key(r) in wanted):
                stale.add(r["strategy"])
    # Runs of an interrupted invocation with the same output, kept as they ended.
    os.makedirs(output, exist_ok=True)
    partial = os.path.join(output, PARTIAL_FILE)
    earlier, unreadable = report.read_partial(partial)
    kept = [r for r in earlier if report.job_key(r) in wanted]
    # Finished runs this command does not ask for (an interrupted command with
    # other settings) stay in the file, for that command to go on from.
    # Runs of an earlier version of a strategy being run now would run again: dropped.
    others = [r for r in earlier if report.job_key(r) not in wanted
              and not (r["strategy"] in known and key(r) in wanted)]
    for r in kept:
        cached[report.job_key(r)] = r
    todo = [j for j in jobs if key(j) not in cached]
    start = time.time()

    def progress(done, total, result):
        report.append_partial(partial, result)
        if done % 50 == 0 or done == total:
            print(f"  {done}/{total} runs ({time.time() - start:.0f} s)", flush=True)

    workers = max(1, min(workers, len(todo)))
    stale = {name for name in stale if any(j["strategy"] == name for j in todo)}
    if stale:
        print(f"metanas bench: runs of {', '.join(sorted(stale))} in --reuse were made by an "
              f"earlier version of the strategy or of the harness's noise; they run again",
              flush=True)
    print(f"metanas bench: {len(jobs)} runs ({len(jobs) - len(todo)} reused"
          + (f", {len(kept)} kept from an interrupted run in {partial}" if kept else "")
          + f") on {workers} worker(s)", flush=True)
    fresh = run_many(todo, workers=workers, progress=progress, modules=strategy_modules)
    fresh_by_key = {key(j): r for j, r in zip(todo, fresh)}
    results = [fresh_by_key.get(key(j)) or cached[key(j)] for j in jobs]
    elapsed = time.time() - start
    raw = os.path.join(output, "raw.json.gz")
    _keep_other_results(raw, results)
    report.save_results(results, raw)
    order = [s for s in known if s in strategies]
    untested = (f"it needs runs of a metanas strategy and of a peer with >= "
                f"{report.MIN_SEEDS_FOR_TEST} seeds on one task")
    descriptions = {name: s.description for name, s in known.items()}
    stamp = f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
    lines = [f"Generated {stamp} at commit {_commit()}, {len(results)} runs "
             f"({len(todo)} run now in {elapsed:.0f} s on {workers} worker(s)), "
             f"{evals} evaluations per run.", ""]
    if command:
        lines += ["Command:", "", f"    {command}", ""]
    lines += ["Seeds per strategy:", ""] + report.seeds_table(results, order) + [""]
    if multi_objective:
        lines += ["Hypervolume after the budget (accuracy up, model size down, both scaled "
                  "to the table's range; reference point = worst accuracy, largest model):",
                  ""] + report.hypervolume_table(results, order) + [""]
        metanas = [s for s in order if known[s].metanas]
        peers = [s for s in order if not known[s].metanas]
        lines += ["Mann–Whitney U (two-sided) of each metanas strategy's hypervolume vs the "
                  "peer with the highest mean; * p < 0.05; † still below 0.05 after Holm's "
                  "correction for the strategy's tests on all the tasks (its column).", ""]
        tested = metanas and report.significance_table(results, metanas, peers, "hypervolume",
                                                       lower_is_better=False)
        lines += _or_why(tested, untested) + [""]
    else:
        lines += ["### Mean regret of the returned configuration (lower is better)", "",
                  "The configuration a search returns is its best by observed score (one "
                  "training seed drawn per evaluation), or, for a metanas oracle that "
                  "evaluates configurations again (metanas evolution's final race), its "
                  "own choice by mean score; regret = table optimum − its true "
                  "(seed-averaged) score (HPOLib: its true MSE − the optimum). ± is the "
                  "standard error over seeds; bold is the best per task among strategies "
                  "run on several seeds.", ""]
        lines += report.main_table(results, order) + [""]
        lines += ["### Median regret of the returned configuration", "",
                  "The same runs' medians over seeds: a few seeds move a mean (on HPOLib, a "
                  "returned configuration one of whose training seeds diverged), not a "
                  "median.", ""] + report.median_table(results, order) + [""]
        if any("found_regret" in r for r in results):
            lines += ["### Regret of the best configuration evaluated", "",
                      "What each search found, judged by true score, before the noise of "
                      "the observed score picks the configuration it returns: the gap to the "
                      "table above is the cost of choosing the incumbent under noise.", ""]
            lines += report.found_table(results, order) + [""]
        timed = report.time_budget_table(results, order)
        if timed:
            lines += ["### NAS-Bench-201 at the simulated training-time budget", "",
                      "Mean regret when the summed table `train_time` of the evaluated "
                      "architectures reaches 50 median training times (the harness's "
                      "budget, the same share of each table; the NAS-Bench-201 paper fixes "
                      "one in seconds per dataset instead). That run caps "
                      "`max_trials` at 4x the evaluations, so with 100 evaluations a "
                      "strategy with a final race (planned for the last part of "
                      "`max_trials`, 30% by default) ends before its race begins: its row "
                      "is its search without the race.",
                      ""] + timed + [""]
        nb = [r for r in results if r["task"].startswith("nb201/")]
        if nb:
            lines += ["### NAS-Bench-201: true validation accuracy (%) of the returned "
                      "architecture", ""] + report.true_score_table(nb, order) + [""]
        lines += ["### The bar: default metanas evolution vs reference evolution and "
                  "random search (tuning tasks)", ""] + _or_why(
            report.bar_table(results), "it needs runs of metanas/evolution, "
            "ref/regularized-evolution and metanas/random on a tuning task") + [""]
        metanas = [s for s in order if known[s].metanas]
        peers = [s for s in order if not known[s].metanas]
        lines += ["### Mann–Whitney U: each metanas strategy vs the best peer", "",
                  f"Two-sided test of final regret over seeds against the peer with the lowest "
                  f"mean regret on the task (among peers with >= {report.MIN_SEEDS_FOR_TEST} "
                  f"seeds); better or worse: which of the two has the lower regret in more "
                  f"pairs of seeds (the side the test finds); * p < 0.05. The best peer is "
                  f"chosen on the same seeds, so its mean is the luckiest of several (a "
                  f"slightly easy bar for \"worse\", a "
                  f"slightly hard one for \"better\"). † marks a test still below 0.05 "
                  f"after Holm's correction for the strategy's tests on all the tasks (its "
                  f"column: the chance of any false † in a column is at most 0.05).", ""]
        tested = metanas and report.significance_table(results, metanas, peers)
        lines += _or_why(tested, untested) + [""]
        lines += ["### Oracle overhead per evaluation", "",
                  "keras-tuner strategies: wall time in the oracle's `create_trial`, "
                  "`update_trial` and `end_trial` (keras-tuner's own bookkeeping included; "
                  "its trial and oracle files are not written unless METANAS_BENCH_SAVE_FILES=1), "
                  "and in `populate_space` alone; Optuna: "
                  "`study.ask` + `study.tell`, and `ask` alone (in-memory storage).", ""]
        lines += report.overhead_table(results, order, descriptions) + [""]
    if plots and not multi_objective:
        paths = report.plot_curves(results, os.path.join(output, "plots"), order)
        lines += ["Plots (mean regret vs evaluations, 95% bands): " + ", ".join(
            f"[{os.path.basename(p)}](plots/{os.path.basename(p)})" for p in paths), ""]
    path = os.path.join(output, "report.md")
    report.write_atomically(path, lambda f: f.write("\n".join(lines) + "\n"))
    # Only now: a command stopped while it wrote the report and plots goes on
    # from the finished runs the partial file still holds.
    if unreadable:  # not lost with the file
        aside = os.path.join(output, UNREADABLE_FILE)
        report.set_aside(aside, unreadable)
        print(f"metanas bench: {len(unreadable)} line(s) of {partial} that are not finished "
              f"runs (torn by a kill, or edited) kept in {aside}", flush=True)
    if others:  # everything else it held is in raw.json.gz now
        report.save_partial(partial, others)
        print(f"metanas bench: {len(others)} finished run(s) of other settings (an "
              f"interrupted command's) stay in {partial}", flush=True)
    elif os.path.exists(partial):
        os.remove(partial)
    return path


def _or_why(table: List[str], why: str) -> List[str]:
    """A Markdown ``table``, or, when it has no row, a line that says ``why``."""
    return table if len(table) > 2 else [f"No rows: {why}."]


def add_bench(subparsers) -> None:
    from metanas.bench.strategies import STRATEGIES

    parser = subparsers.add_parser(
        "bench",
        help="race metanas strategies against keras-tuner and Optuna on tabular NAS/HPO tasks",
    )
    parser.add_argument("--tasks", default="all",
                        help="all, tuning, held-out, or comma-separated names (default all)")
    parser.add_argument("--strategies", default="all",
                        help="all or comma-separated names (default all): "
                             + ", ".join(STRATEGIES))
    parser.add_argument("--seeds", type=int, default=20,
                        help="runs per task and strategy, one seed each (default 20)")
    parser.add_argument("--evals", type=int, default=100,
                        help="evaluations per run (default 100)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds are FIRST .. FIRST+SEEDS-1 (default 0)")
    parser.add_argument("--limit", action="append", default=[],
                        metavar="STRATEGY=SEEDS[@TASKS]",
                        help="another number of seeds (and optionally only some tasks) "
                             "for a strategy, such as a slow one")
    parser.add_argument("--reuse", action="append", default=[], metavar="RAW.json.gz",
                        help="take identical runs from an earlier raw results file")
    parser.add_argument("--multi-objective", action="store_true",
                        help="NAS-Bench-201 accuracy vs model size: hypervolume")
    parser.add_argument("--strategy-module", action="append", default=[], metavar="MODULE",
                        help="import MODULE first (here and in each worker): it adds "
                             "strategies with metanas.bench.register_strategy")
    parser.add_argument("--no-plots", action="store_true", help="write no PNG plots")
    parser.add_argument("--output", default="bench_results", help="output directory")

    def run(args) -> int:
        for name in ("seeds", "evals", "workers"):
            if getattr(args, name) < 1:
                raise _usage_error(f"--{name} must be >= 1, got {getattr(args, name)}")
        from metanas.usage import MAX_SEED, check_seed

        check_seed("--first-seed", args.first_seed)
        if args.first_seed + args.seeds - 1 > MAX_SEED:
            raise _usage_error(f"--first-seed + --seeds - 1 must be <= {MAX_SEED}, got "
                               f"{args.first_seed} + {args.seeds} - 1")
        tasks = resolve_tasks(args.tasks)
        if args.multi_objective and any(not t.startswith("nb201/") for t in tasks):
            raise _usage_error("--multi-objective needs NAS-Bench-201 tasks (nb201/...): "
                               "only they have model size columns")
        from metanas.bench.runner import StrategyMakeError, WorkerImportError, import_modules

        try:
            import_modules(args.strategy_module)
        except ValueError as error:
            raise _usage_error(f"--strategy-module: {error}") from None
        strategies = resolve_strategies(args.strategies, args.multi_objective)
        limits = parse_limits(args.limit, strategies, tasks)
        for name, (count, _) in limits.items():
            if args.first_seed + count - 1 > MAX_SEED:
                raise _usage_error(f"--first-seed + the seeds of --limit {name} - 1 must be "
                                   f"<= {MAX_SEED}, got {args.first_seed} + {count} - 1")
        from metanas.bench.report import load_results

        for path in args.reuse:
            if not os.path.isfile(path):
                raise _usage_error(f"--reuse: {path!r} is a directory, not a results file"
                                   if os.path.isdir(path) else f"--reuse: no such file {path!r}")
            try:
                load_results(path)
            except ValueError as error:
                raise _usage_error(f"--reuse: {error}") from error
        from metanas.usage import check_output_directory

        check_output_directory("--output", args.output)
        partial = os.path.join(args.output, PARTIAL_FILE)
        if os.path.isdir(partial):
            raise _usage_error(f"--output: {partial!r} is a directory; it must be the file of "
                               f"an interrupted run's finished runs, or absent")
        command = shlex.join(["metanas", *sys.argv[1:]]) if sys.argv[1:2] == ["bench"] else ""
        try:
            path = run_bench(tasks=tasks, strategies=strategies, seeds=args.seeds,
                             evals=args.evals, workers=args.workers, output=args.output,
                             limits=limits, reuse=args.reuse,
                             multi_objective=args.multi_objective, command=command,
                             plots=not args.no_plots, first_seed=args.first_seed,
                             strategy_modules=args.strategy_module)
        except WorkerImportError as error:
            raise _usage_error(f"--strategy-module: {error}") from None
        except StrategyMakeError as error:
            raise _usage_error(f"{error}; {_kept(args.output)}") from None
        except OutputBusyError as error:
            raise _usage_error(f"--output: {error}") from None
        except KeyboardInterrupt as interrupt:  # Ctrl-C, or a SIGTERM (metanas.cli)
            from metanas.usage import forget_interrupts, interrupted_status

            forget_interrupts()  # reported here
            print(f"metanas bench: interrupted; {_kept(args.output)}", file=sys.stderr)
            return interrupted_status(interrupt)
        except OSError as error:  # a full disk, a folder made read-only meanwhile
            where = f" {error.filename!r}" if error.filename else ""
            print(f"metanas bench: error: cannot write{where}: {error.strerror or error}; "
                  f"{_kept(args.output)}", file=sys.stderr)
            return 1
        print(f"metanas bench: wrote {path}")
        return 0

    parser.set_defaults(func=run)
