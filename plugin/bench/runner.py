"""Running one strategy on one task for one seed, and many of them in parallel.

Keras-tuner strategies run through keras-tuner's own search loop
(`keras_tuner.Tuner.search`) with `TableTuner`, whose ``run_trial`` reads the
table instead of training; Optuna strategies run through ``study.ask`` /
``study.tell``. Either way every evaluation draws the score of one training
seed of the table (the noise a real search sees) from a random source of its
own (`noise_rng`), seeded by the run's seed and independent of the strategy's.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np

from metanas.bench.strategies import Strategy, evolution_strategy, get_strategy
from metanas.bench.tasks import MULTI_OBJECTIVE_METRICS, Task, load_task
from metanas.tuners.base import check_int, release_oracle

__all__ = [
    "TableTuner",
    "run_one",
    "run_many",
    "time_budget",
    "summarise_history",
    "skip_checkpoints",
    "OBJECTIVE_NAME",
    "noise_rng",
    "NOISE_PROTOCOL",
]

#: Name of the score a `TableTuner` trial reports.
OBJECTIVE_NAME = "score"
#: NAS-Bench-201's simulated-time budget, in median training times of the table.
TIME_BUDGET_MEDIANS = 50
#: A run with a time budget stops at this many times the evaluation budget at most.
MAX_EVALS_FACTOR = 4


def time_budget(task: Task) -> Optional[float]:
    """The simulated training-time budget of ``task`` in seconds (NB201 only).

    NAS-Bench-201 searches are budgeted by the summed training time of the
    architectures they evaluate (Dong & Yang 2020); here the budget is
    `TIME_BUDGET_MEDIANS` times the table's median training time.
    """
    if task.family != "nb201":
        return None
    return float(TIME_BUDGET_MEDIANS * np.median(task.columns["train_time"]))


#: How a run draws its table noise; `--reuse` takes only runs of the current one.
#: 2: from `noise_rng`. 1 (before 2026-12-07): ``default_rng(seed)``, the very
#: stream that a metanas oracle or the reference evolution seeded with the run's
#: seed draws its own decisions from, so that the k-th training seed drawn was
#: a function of the strategy's k-th random number (keras-tuner's and Optuna's
#: oracles draw from other generators).
NOISE_PROTOCOL = 2
_NOISE_STREAM = 0x6E6F6973  # "nois": spawns the noise's own stream from a run's seed


def noise_rng(seed) -> np.random.Generator:
    """The random source of a run's table noise: ``SeedSequence([seed, tag])``,
    a stream independent of any generator seeded with ``seed`` itself."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), _NOISE_STREAM]))


def _scratch_root() -> str:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def _make_tuner_class():
    import keras_tuner

    class TableTuner(keras_tuner.Tuner):
        """A keras-tuner `Tuner` whose trials read a `Task`'s table.

        ``run_trial`` returns the observed score (one training seed drawn at
        random) as ``"score"``, and with ``multi_objective=True`` also the
        table's `MULTI_OBJECTIVE_METRICS` columns, so any keras-tuner oracle
        searches the table through keras-tuner's own loop.

        Args:
            task: The `Task`.
            oracle: The keras-tuner oracle under test.
            noise_seed: Seed of the draws of training seeds (`noise_rng`).
            on_trial: Called with each evaluation's record; returns True to
                end the search after it (budget reached).
            multi_objective: Report the multi-objective metrics too.
            **kwargs: For `keras_tuner.Tuner` (``directory``, ...).
        """

        def __init__(self, task: Task, *, oracle, noise_seed: int,
                     on_trial: Optional[Callable[[Dict[str, Any]], bool]] = None,
                     multi_objective: bool = False, **kwargs) -> None:
            super().__init__(oracle=oracle, hypermodel=task.hypermodel(), **kwargs)
            self.task = task
            self.noise = noise_rng(noise_seed)
            self.on_trial = on_trial
            self.multi_objective = multi_objective
            self.history: List[Dict[str, Any]] = []

        def run_trial(self, trial, *args, **kwargs):
            values = dict(trial.hyperparameters.values)
            score = self.task.observe(values, self.noise)
            record = {"values": values, "observed": score}
            self.history.append(record)
            metrics = {OBJECTIVE_NAME: score}
            if self.multi_objective:
                metrics = {MULTI_OBJECTIVE_METRICS[0]: score}
                for column in MULTI_OBJECTIVE_METRICS[1:]:
                    metrics[column] = self.task.column(column, values)
                # keras-tuner wants its MultiObjective's own (summed) value too.
                objective = self.oracle.objective
                metrics[objective.name] = objective.get_value(metrics)
            if self.on_trial is not None and self.on_trial(record):
                # Budget reached: no more trials after this one.
                self.oracle.max_trials = len(self.oracle.trials)
            return metrics

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            # A metanas oracle that evaluates configurations again returns its
            # own incumbent (see `MetanasOracle.incumbent_evaluations` and
            # `racing_fraction`): record it, as the configuration the search
            # would return at this point.
            if self.history and getattr(self.oracle, "repeats_configurations", False):
                best = self.oracle.get_best_trials(1)
                if best:
                    self.history[-1]["returned"] = dict(best[0].hyperparameters.values)

        def save_model(self, trial_id, model, step=0):  # nothing is trained
            return None

        def search(self, *fit_args, **fit_kwargs):
            try:
                return super().search(*fit_args, **fit_kwargs)
            finally:  # else keras-tuner keeps the oracle alive for the life of the process
                release_oracle(self.oracle)

    return TableTuner


_TUNER_CLASS = None


def TableTuner(*args, **kwargs):  # noqa: N802 - a class, built lazily
    """See `_make_tuner_class`: built on first use so importing stays light."""
    global _TUNER_CLASS
    if _TUNER_CLASS is None:
        _TUNER_CLASS = _make_tuner_class()
    return _TUNER_CLASS(*args, **kwargs)


class _Timer:
    """Accumulates the wall time spent in wrapped oracle methods."""

    def __init__(self) -> None:
        self.total = 0.0
        self.propose = 0.0

    def wrap(self, obj, name: str, propose: bool = False) -> None:
        inner = getattr(obj, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                if propose:
                    self.propose += elapsed
                else:
                    self.total += elapsed

        setattr(obj, name, timed)


def _objective(task: Task, multi_objective: bool):
    import keras_tuner

    if multi_objective:
        return [keras_tuner.Objective(MULTI_OBJECTIVE_METRICS[0], task.direction),
                keras_tuner.Objective(MULTI_OBJECTIVE_METRICS[1], "min")]
    return keras_tuner.Objective(OBJECTIVE_NAME, task.direction)


def _budget(task: Task, evals: int, use_time: bool):
    """``on_trial`` for a run: True once both the eval and time budgets are met."""
    budget = time_budget(task) if use_time else None
    state = {"n": 0, "time": 0.0}

    def on_trial(record: Dict[str, Any]) -> bool:
        state["n"] += 1
        state["time"] += task.column("train_time", record["values"])
        done = state["n"] >= evals
        if budget is not None:
            done = done and state["time"] >= budget
        return done or state["n"] >= evals * (MAX_EVALS_FACTOR if budget else 1)

    return on_trial, (evals * MAX_EVALS_FACTOR if budget else evals)


#: Let keras-tuner write its trial and oracle files (off in benchmark runs).
save_files = os.environ.get("METANAS_BENCH_SAVE_FILES", "") == "1"


def skip_checkpoints(oracle, tuner=None) -> None:
    """Stops keras-tuner writing trial and oracle files for a table search.

    keras-tuner writes every trial and the whole oracle state (the RL
    controller's policy included) to disk several times per trial; on a table,
    where a trial costs microseconds, that dominates the run and nothing needs
    resuming, so benchmark and meta-training searches skip it unless
    ``METANAS_BENCH_SAVE_FILES=1``.
    """
    if save_files:
        return
    oracle._save_trial = lambda trial: None
    oracle.save = lambda *args, **kwargs: None
    if tuner is not None:
        tuner.save = lambda *args, **kwargs: None


def _run_keras_tuner(strategy: Strategy, task: Task, *, seed: int, evals: int,
                     use_time: bool, multi_objective: bool):
    on_trial, cap = _budget(task, evals, use_time)
    oracle = _made(strategy, objective=_objective(task, multi_objective), max_trials=cap,
                   seed=seed)
    skip_checkpoints(oracle)
    timer = _Timer()
    for name in ("create_trial", "update_trial", "end_trial"):
        timer.wrap(oracle, name)
    timer.wrap(oracle, "populate_space", propose=True)
    directory = tempfile.mkdtemp(prefix="metanas-bench-", dir=_scratch_root())
    try:
        tuner = TableTuner(task, oracle=oracle, noise_seed=seed, on_trial=on_trial,
                           multi_objective=multi_objective, directory=directory,
                           project_name="run", overwrite=True)
        skip_checkpoints(oracle, tuner)
        tuner.search(verbose=0)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    # An oracle that races its finalists plans by `max_trials` (the cap here).
    return tuner.history, timer, getattr(oracle, "race_trials", lambda: 0)() > 0


def _run_optuna(strategy: Strategy, task: Task, *, seed: int, evals: int,
                use_time: bool, multi_objective: bool):
    import optuna
    from optuna.distributions import CategoricalDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    on_trial, cap = _budget(task, evals, use_time)
    noise = noise_rng(seed)
    sampler = _made(strategy, seed=seed)
    if multi_objective:
        study = optuna.create_study(directions=["maximize" if task.maximize else "minimize",
                                                "minimize"], sampler=sampler)
    else:
        study = optuna.create_study(direction="maximize" if task.maximize else "minimize",
                                    sampler=sampler)
    distributions = {name: CategoricalDistribution(choices)
                     for name, choices in task.space.items()}
    timer = _Timer()
    history = []
    for _ in range(cap):
        start = time.perf_counter()
        trial = study.ask(distributions)
        asked = time.perf_counter()
        timer.propose += asked - start
        values = {name: trial.params[name] for name in task.space}
        score = task.observe(values, noise)
        record = {"values": values, "observed": score}
        history.append(record)
        start = time.perf_counter()
        if multi_objective:
            study.tell(trial, [score, task.column(MULTI_OBJECTIVE_METRICS[1], values)])
        else:
            study.tell(trial, score)
        timer.total += time.perf_counter() - start
        if on_trial(record):
            break
    return history, timer, False


def incumbents(task: Task, history: Sequence[Mapping[str, Any]]):
    """Yields the incumbent ``(values, observed score)`` after each evaluation.

    It is what the search would return: the best single observation (first
    on ties), as keras-tuner's and Optuna's searches return it, or, for a
    search that evaluates configurations again, its own choice recorded as
    ``"returned"`` (with the mean of that configuration's observations).
    """
    best_values = best_obs = None
    observed: Dict[int, List[float]] = {}
    for record in history:
        observed.setdefault(task.code(record["values"]), []).append(record["observed"])
        if "returned" in record:  # the search's own choice, judged by its mean
            best_values = record["returned"]
            best_obs = float(np.mean(observed[task.code(best_values)]))
        elif best_obs is None or task.better(record["observed"], best_obs):
            best_values, best_obs = record["values"], record["observed"]
        yield best_values, best_obs


def summarise_history(task: Task, history: Sequence[Mapping[str, Any]], *,
                      evals: int, use_time: bool = True) -> Dict[str, Any]:
    """The measures of one run from its evaluations, in order.

    The incumbent is the configuration the search would return (see
    `incumbents`), judged by its true score.

    Returns a dict with: ``curve`` (regret of the incumbent, by observed score,
    after each of the first ``evals`` evaluations), ``regret`` and
    ``true_score`` of the final incumbent, ``observed`` (its observed score),
    ``incumbent`` (its configuration), ``found_regret`` (the regret of the
    best configuration evaluated, by true score: what the search found, before
    the observed-score noise picks the incumbent), ``unique`` (distinct
    configurations among the first ``evals``), ``evals`` (evaluations counted) and, for
    NAS-Bench-201, ``time_regret``/``time_evals`` at the simulated time budget.
    """
    curve: List[float] = []
    best_obs = best_values = None
    found = math.inf
    for record, (best_values, best_obs) in zip(history[:evals], incumbents(task, history[:evals])):
        found = min(found, task.regret(task.true_score(record["values"])))
        curve.append(task.regret(task.true_score(best_values)))
    seen = {task.code(record["values"]) for record in history[:evals]}
    true = task.true_score(best_values) if best_values is not None else math.nan
    out = {
        "evals": len(curve),
        "curve": [float(f"{c:.6g}") for c in curve],
        "regret": task.regret(true) if best_values is not None else math.nan,
        "true_score": true,
        "observed": best_obs,
        "incumbent": best_values,
        "found_regret": found if best_values is not None else math.nan,
        "unique": len(seen),
    }
    budget = time_budget(task) if use_time else None
    if budget is not None:
        spent, n = 0.0, 0
        for record in history:
            cost = task.column("train_time", record["values"])
            if spent + cost > budget and n > 0:
                break
            spent += cost
            n += 1
        best_values = list(incumbents(task, history[:n]))[-1][0]
        out["time_budget"] = budget
        out["time_evals"] = n
        out["time_regret"] = task.regret(task.true_score(best_values))
    return out


def _multi_objective_summary(task: Task, history, evals: int) -> Dict[str, Any]:
    from metanas.bench.hypervolume import hypervolume_of

    points = [(task.true_score(r["values"]), task.column(MULTI_OBJECTIVE_METRICS[1], r["values"]))
              for r in history[:evals]]
    return {"evals": len(points), "hypervolume": hypervolume_of(task, points),
            "unique": len({task.code(r["values"]) for r in history[:evals]})}


def run_one(task_name: str, strategy: str, seed: int, *, evals: int = 100,
            settings: Optional[Dict[str, Any]] = None, use_time: bool = True,
            multi_objective: bool = False) -> Dict[str, Any]:
    """Runs ``strategy`` on ``task_name`` with ``seed`` and returns its measures.

    Args:
        task_name: One of `metanas.bench.TASK_NAMES`.
        strategy: A name of `STRATEGIES`, or any name when ``settings`` is
            given: then it is an `EvolutionOracle` with those settings.
        seed: Seeds the strategy and the table's noise.
        evals: The evaluation budget.
        settings: `EvolutionOracle` keyword settings (for tuning its defaults).
        use_time: Also run to NAS-Bench-201's simulated-time budget.
        multi_objective: Search NAS-Bench-201's accuracy and model size
            together and report the hypervolume instead of regret.

    Returns:
        The measures of `summarise_history` plus ``task``, ``strategy``,
        ``seed``, ``settings``, ``overhead_ms`` (strategy time per evaluation:
        keras-tuner oracle calls, or Optuna ask and tell) and ``propose_ms``
        (``populate_space``, or Optuna ask, per evaluation).
    """
    check_int("evals", evals, low=1)
    check_int("seed", seed, low=0)
    task = load_task(task_name)
    spec = evolution_strategy(strategy, **settings) if settings is not None else get_strategy(strategy)
    timed = use_time and not multi_objective and time_budget(task) is not None
    runner = _run_optuna if spec.kind == "optuna" else _run_keras_tuner
    start = time.perf_counter()
    history, timer, plans_by_cap = runner(spec, task, seed=seed, evals=evals, use_time=timed,
                                          multi_objective=multi_objective)
    if multi_objective:
        out = _multi_objective_summary(task, history, evals)
    elif timed and plans_by_cap:
        # The run to the time budget had `max_trials` at its cap, so the
        # oracle's final race came after the first `evals` evaluations: the
        # evaluation-budget measures come from a run of exactly `evals`.
        short, _, _ = runner(spec, task, seed=seed, evals=evals, use_time=False,
                             multi_objective=False)
        out = summarise_history(task, short, evals=evals, use_time=False)
        out.update({key: value for key, value in summarise_history(
            task, history, evals=evals, use_time=True).items() if key.startswith("time_")})
    else:
        out = summarise_history(task, history, evals=evals, use_time=timed)
    wall = time.perf_counter() - start
    n = max(len(history), 1)
    out.update({
        "task": task_name,
        "strategy": strategy,
        "strategy_version": spec.version,
        "noise_protocol": NOISE_PROTOCOL,
        "seed": seed,
        "settings": settings,
        "budget": evals,
        "use_time": use_time,
        "multi_objective": multi_objective,
        "overhead_ms": 1000.0 * (timer.total + timer.propose) / n
        if spec.kind == "optuna" else 1000.0 * timer.total / n,
        "propose_ms": 1000.0 * timer.propose / n,
        "wall_s": wall,
    })
    return out


def _run_job(job: Dict[str, Any]) -> Dict[str, Any]:
    return run_one(**job)


class WorkerImportError(ValueError):
    """A strategy module imported in the main process but not in a pool worker."""


class StrategyMakeError(ValueError):
    """A strategy's ``make`` returned what its kind cannot run (a registered
    strategy's mistake, which `metanas bench` reports in one line)."""


def _made(strategy: Strategy, **settings) -> Any:
    """``strategy.make(**settings)``, if it is what ``strategy.kind`` runs: a
    keras-tuner Oracle, or an Optuna sampler.

    Raises:
        StrategyMakeError: ``make`` raised, or returned something else.
    """
    try:
        made = strategy.make(**settings)
    except Exception as error:  # noqa: BLE001 - a registered strategy's own mistake
        raise StrategyMakeError(f"strategy {strategy.name!r} ({strategy.kind}): make raised "
                                f"{type(error).__name__}: {error}") from error
    if strategy.kind == "optuna":
        import optuna

        wanted, ok = "an optuna sampler", isinstance(made, optuna.samplers.BaseSampler)
    else:
        import keras_tuner

        wanted, ok = "a keras_tuner Oracle", isinstance(made, keras_tuner.Oracle)
    if not ok:
        raise StrategyMakeError(
            f"strategy {strategy.name!r} ({strategy.kind}): make returned "
            f"{type(made).__name__} {made!r:.60}, expected {wanted}")
    return made


#: In a pool worker: why its strategy modules did not import (its jobs raise it).
_WORKER_ERROR: Optional[str] = None


def _run_indexed(item):
    if _WORKER_ERROR is not None:
        raise WorkerImportError(_WORKER_ERROR)
    index, job = item
    return index, run_one(**job)


def import_modules(modules: Sequence[str]) -> None:
    """Imports ``modules`` (that register strategies); ValueError naming one that fails.

    The working directory is searched first, as ``python -m`` would (the
    ``metanas`` command puts its own directory there instead).
    """
    if modules and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in modules:
        try:
            importlib.import_module(name)
        except (Exception, SystemExit) as error:  # noqa: BLE001 - whatever the module raises
            what = (f"it called sys.exit({error.code!r})" if isinstance(error, SystemExit)
                    else f"{type(error).__name__}: {error}")
            raise ValueError(f"cannot import the strategy module {name!r}: {what}") from error


@contextlib.contextmanager
def _ignoring_sigint():
    """Ignores SIGINT while it lasts (in the main thread), so that processes started
    meanwhile inherit that: Python leaves an ignored SIGINT ignored at start-up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _start_worker(modules: Sequence[str]) -> None:
    # Ctrl-C reaches the whole process group: the parent stops the pool, and
    # the workers do not each print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _WORKER_ERROR
    try:
        import_modules(modules)
    except ValueError as error:
        # An initializer that raises kills the worker, and the pool starts
        # another for ever: the first job reports it instead.
        _WORKER_ERROR = f"in a worker process, {error}"


def run_many(jobs: Iterable[Dict[str, Any]], *, workers: int = 2,
             progress: Optional[Callable[[int, int, Dict[str, Any]], None]] = None,
             modules: Sequence[str] = ()) -> List[Dict[str, Any]]:
    """Runs `run_one` for each job (its keyword arguments) in ``workers`` processes.

    Jobs are grouped by task so each process loads a table once. ``progress``
    sees each result as soon as its run ends (so a caller can keep it at
    once); the returned list is in the order of ``jobs``. ``modules`` are
    imported in each process first (strategies registered with
    `metanas.bench.register_strategy`).

    Raises:
        ValueError: A module does not import (`WorkerImportError` when it
            imports here but not in a worker process).
    """
    jobs = list(jobs)
    check_int("workers", workers, low=1)
    import_modules(modules)
    order = sorted(range(len(jobs)), key=lambda i: (jobs[i]["task_name"], i))
    results: List[Optional[Dict[str, Any]]] = [None] * len(jobs)
    if workers == 1:
        for done, i in enumerate(order, 1):
            results[i] = _run_job(jobs[i])
            if progress:
                progress(done, len(jobs), results[i])
        return results
    context = multiprocessing.get_context("spawn")
    with _ignoring_sigint():  # from their first instruction, not from the initializer on
        pool = context.Pool(workers, initializer=_start_worker, initargs=(tuple(modules),))
    with pool:
        ordered = [(i, jobs[i]) for i in order]
        for done, (i, result) in enumerate(
            pool.imap_unordered(_run_indexed, ordered, chunksize=1), 1
        ):
            results[i] = result
            if progress:
                progress(done, len(jobs), result)
    return results
