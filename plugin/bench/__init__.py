"""Benchmarks of search strategies on tabular NAS/HPO tables (NAS-Bench-201, HPOBench, HPOLib).

`load_task` gives a `Task`: a keras-tuner search space whose trials read a
table instead of training, with the table's optimum, true (seed-averaged)
scores and regret. `run_one`/`run_many` race strategies (`STRATEGIES`) through
keras-tuner's own search loop (`TableTuner`) or through Optuna, and
`metanas.bench.report` turns the raw results into tables, plots and tests.
Settings may be chosen on `TUNING_TASKS` only; `HELD_OUT_TASKS` are reported.

Example:

    >>> from metanas.bench import load_task, run_one
    >>> task = load_task("nb201/cifar10")
    >>> result = run_one("nb201/cifar10", "metanas/evolution", seed=0, evals=30)
    >>> result["regret"] >= 0
    True
"""

import importlib
from typing import TYPE_CHECKING

# Names -> the submodule that defines them. Imported on first use (PEP 562), so
# that `metanas.bench.tasks` and `metanas.bench.report` (and `metanas --help`)
# do not import keras-tuner and TensorFlow, which only the runner needs.
_EXPORTS = {
    "TableTuner": "runner",
    "run_many": "runner",
    "run_one": "runner",
    "summarise_history": "runner",
    "time_budget": "runner",
    "DEFAULT_STRATEGIES": "strategies",
    "METANAS_STRATEGIES": "strategies",
    "PEER_STRATEGIES": "strategies",
    "STRATEGIES": "strategies",
    "Strategy": "strategies",
    "get_strategy": "strategies",
    "register_strategy": "strategies",
    "HELD_OUT_TASKS": "tasks",
    "MULTI_OBJECTIVE_METRICS": "tasks",
    "TASK_NAMES": "tasks",
    "TUNING_TASKS": "tasks",
    "Task": "tasks",
    "load_task": "tasks",
}

if TYPE_CHECKING:  # pragma: no cover
    from metanas.bench.runner import TableTuner, run_many, run_one, summarise_history, time_budget
    from metanas.bench.strategies import (
        DEFAULT_STRATEGIES,
        METANAS_STRATEGIES,
        PEER_STRATEGIES,
        STRATEGIES,
        Strategy,
        get_strategy,
        register_strategy,
    )
    from metanas.bench.tasks import (
        HELD_OUT_TASKS,
        MULTI_OBJECTIVE_METRICS,
        TASK_NAMES,
        TUNING_TASKS,
        Task,
        load_task,
    )


_SUBMODULES = ("command", "hypervolume", "reference", "report", "runner", "strategies", "tasks")


def __getattr__(name: str):
    if name in _SUBMODULES:  # as `import metanas.bench` gave them before
        return importlib.import_module(f"metanas.bench.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'metanas.bench' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"metanas.bench.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "DEFAULT_STRATEGIES",
    "HELD_OUT_TASKS",
    "METANAS_STRATEGIES",
    "MULTI_OBJECTIVE_METRICS",
    "PEER_STRATEGIES",
    "STRATEGIES",
    "Strategy",
    "TASK_NAMES",
    "TUNING_TASKS",
    "TableTuner",
    "Task",
    "get_strategy",
    "load_task",
    "register_strategy",
    "run_many",
    "run_one",
    "summarise_history",
    "time_budget",
]
