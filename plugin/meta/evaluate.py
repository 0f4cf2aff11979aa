"""The meta-objective of one search on a benchmark table: `BenchEvaluator`.

A meta-trial runs a strategy with given settings on benchmark tasks
(`metanas.bench`: NAS-Bench-201, HPOBench and HPOLib tables searched through
keras-tuner's own loop, `TableTuner`) and scores each search with
`normalized_regret_auc`: the mean, over the evaluation budget, of the regret
of the incumbent (chosen by its observed score, judged by its seed-averaged
true score), divided by the median regret of the table's configurations (the
regret of a typical random guess).

Why this meta-objective:

* *Scale-free.* Tables score in accuracy %, accuracy in [0, 1] or MSE; the
  division by a random configuration's regret puts every task on one scale
  (1: no better than one random guess all along; 0: the optimum from the first
  evaluation), so a mean over tasks is not dominated by the task with the
  largest numbers. The median, not the mean, because the MSE tables (HPOLib)
  hold diverged configurations whose huge losses make the mean regret 4-5
  times the median, which would shrink those tasks' scores to near zero.
* *Anytime.* The area under the best-so-far curve rewards reaching good
  configurations early as well as the final result, and it separates settings
  that all end at (near) the optimum of a small table, where final regret ties.
* *Cheap and stable.* The random-configuration regret is exact (the whole table
  is known), where "regret relative to random search on the same budget" would
  need extra random-search runs per task and seed, and its denominator shrinks
  towards zero on easy tables.

``BenchEvaluator(objective="final")`` scores the configuration the search
returns instead: its final regret in the same units (`final_regret_score`).
The area weighs a search's last evaluations at 1/budget each, so it barely
rewards spending them on telling the best configurations apart
(evolution's final race, ``racing_fraction``): on a noisy table the race lowers
the final regret and raises the area. Meta-train with ``"final"`` when what
matters is the configuration a search hands back; one meta-study holds one
objective (`MetaLearner.ensure_objective`).
"""

from __future__ import annotations

import math
import numbers
import os
import shutil
import tempfile
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from metanas.meta.learner import MetaTask, check_objective, normalized_regret_auc, strategy_classes
from metanas.tuners.base import ShortSearchWarning, check_int

__all__ = [
    "BenchEvaluator",
    "curve_score",
    "final_regret_score",
    "random_regret",
    "run_search",
]


def random_regret(task) -> float:
    """The median regret of ``task``'s configurations: that of a typical random guess."""
    scores = np.asarray(task.mean_scores, dtype=float)
    scores = scores[np.isfinite(scores)]
    gaps = task.optimum - scores if task.maximize else scores - task.optimum
    return float(np.median(np.maximum(gaps, 0.0)))


def run_search(task, oracle, *, seed: int, budget: int) -> List[Dict[str, Any]]:
    """Runs ``oracle`` on a benchmark ``task`` for ``budget`` evaluations.

    Returns the evaluations in order (``{"values", "observed"}`` records);
    ``oracle`` keeps its final state (evolution's population, ...).
    """
    from metanas.bench import TableTuner
    from metanas.bench.runner import skip_checkpoints

    count = {"n": 0}

    def on_trial(record) -> bool:
        count["n"] += 1
        return count["n"] >= budget

    root = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    directory = tempfile.mkdtemp(prefix="metanas-meta-", dir=root)
    try:
        tuner = TableTuner(task, oracle=oracle, noise_seed=seed, on_trial=on_trial,
                           directory=directory, project_name="run", overwrite=True)
        skip_checkpoints(oracle, tuner)
        tuner.search(verbose=0)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return tuner.history


class BenchEvaluator:
    """``evaluate(task, strategy, settings, seed)`` for `MetaLearner.meta_train`.

    Args:
        budget: Evaluations per search.
        objective: The meta-objective: ``"auc"``, the normalised area under the
            best-so-far regret curve (`normalized_regret_auc`, anytime), or
            ``"final"``, the normalised regret of the configuration the search
            returns (`final_regret_score`).

    Raises:
        ValueError: ``budget`` is not an int >= 2, or ``objective`` is not one
            of `metanas.meta.OBJECTIVES`.
    """

    def __init__(self, *, budget: int = 50, objective: str = "auc") -> None:
        check_int("budget", budget, low=2)
        self.budget = budget
        self.objective = check_objective(objective)

    def oracle(self, task, strategy: str, settings: Mapping[str, Any], seed: int,
               initial_hps: Optional[Sequence[Mapping[str, Any]]] = None):
        """The oracle of ``strategy`` with ``settings`` for ``task``."""
        import keras_tuner

        classes = strategy_classes()
        if strategy not in classes:
            raise ValueError(f"unknown strategy {strategy!r}; allowed: {sorted(classes)}.")
        kwargs = dict(settings)
        if initial_hps:
            kwargs["initial_hps"] = [dict(c) for c in initial_hps]
        with warnings.catch_warnings():  # a setting the meta-study tries, and learns the worth of
            warnings.simplefilter("ignore", ShortSearchWarning)
            return classes[strategy](
                objective=keras_tuner.Objective("score", task.direction),
                max_trials=self.budget,
                seed=seed,
                **kwargs,
            )

    def run(self, task_name: str, strategy: str, settings: Mapping[str, Any], seed: int, *,
            initial_hps: Optional[Sequence[Mapping[str, Any]]] = None) -> Tuple[Dict[str, Any], Any]:
        """One search; returns its measures and the finished oracle.

        The measures are `metanas.bench.summarise_history`'s (``curve``,
        ``regret``, ...) plus ``score``, the meta-objective (``objective``).
        """
        from metanas.bench import load_task, summarise_history

        task = load_task(task_name)
        oracle = self.oracle(task, strategy, settings, seed, initial_hps)
        history = run_search(task, oracle, seed=seed, budget=self.budget)
        summary = summarise_history(task, history, evals=self.budget, use_time=False)
        curve = list(summary["curve"])
        # A search that ran out of configurations keeps its incumbent.
        curve += curve[-1:] * (self.budget - len(curve))
        if self.objective == "final":
            summary["score"] = final_regret_score(task_name, summary["regret"])
        else:
            summary["score"] = normalized_regret_auc(curve, random_regret(task))
        return summary, oracle

    def __call__(self, task: MetaTask, strategy: str, settings: Dict[str, Any], seed: int) -> float:
        return self.run(task.name, strategy, settings, seed)[0]["score"]


def curve_score(task_name: str, curve: Sequence[float], budget: int) -> float:
    """The meta-objective of any strategy's regret curve (e.g. an Optuna sampler's)."""
    from metanas.bench import load_task

    curve = list(curve)[:budget]
    curve += curve[-1:] * (budget - len(curve))
    if not curve or any(math.isnan(c) for c in curve):
        raise ValueError(f"curve must hold finite regrets, got {curve[:5]!r}...")
    return normalized_regret_auc(curve, random_regret(load_task(task_name)))


def final_regret_score(task_name: str, regret: float) -> float:
    """The ``"final"`` meta-objective of a search on a benchmark table.

    Args:
        task_name: The table (`metanas.bench.TASK_NAMES`).
        regret: The true regret of the configuration the search returns.

    Returns:
        ``regret`` in units of the table's median regret (`random_regret`):
        0 is the optimum, 1 a typical random configuration.

    Raises:
        ValueError: ``regret`` is not a finite number >= 0, or the task is unknown.
    """
    from metanas.bench import load_task

    if (isinstance(regret, bool) or not isinstance(regret, numbers.Real)
            or not math.isfinite(regret) or regret < 0):
        raise ValueError(f"regret must be a finite number >= 0, got {regret!r}.")
    return normalized_regret_auc([float(regret)], random_regret(load_task(task_name)))
