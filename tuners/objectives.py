"""Objectives that weigh a metric against model cost, cost measures, Pareto fronts.

keras-tuner sums a list of objectives into one number (its ``MultiObjective``);
MnasNet (Tan et al., "MnasNet: Platform-Aware Neural Architecture Search for
Mobile", CVPR 2019) instead puts the cost into the reward as
``metric * (cost / target) ** w``. `ConstrainedObjective` does that (soft), or
enforces a hard budget; every metanas strategy optimises it unchanged, since it
is one more keras-tuner ``Objective``. `measure_costs` gives each trial its
parameter count, a FLOPs proxy, its size on disk and its inference latency, and
`pareto_front` returns the non-dominated trials for any pair (or more) of
objectives, as NSGA-II ranks them (Deb et al., "A Fast and Elitist
Multiobjective Genetic Algorithm: NSGA-II", IEEE TEC 2002).
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import keras
import keras_tuner
import numpy as np
from keras_tuner.src.engine import metrics_tracking
from keras_tuner.src.engine.objective import DefaultObjective, MultiObjective

__all__ = [
    "COST_METRICS",
    "CostLogger",
    "create_objective",
    "infer_direction",
    "check_objective_is_logged",
    "ConstrainedObjective",
    "measure_costs",
    "pareto_front",
    "non_dominated_ranks",
    "crowding_distance",
    "best_value",
    "hypervolume_2d",
    "resolve_objectives",
]

#: Names under which `measure_costs` records a trial's costs (all to minimise).
COST_METRICS = ("cost/params", "cost/flops", "cost/size_bytes", "cost/latency_ms")

#: Score offset that puts every over-budget trial below every feasible one.
INFEASIBLE_OFFSET = 1e9


#: Metric names (after any ``val_`` prefix) that are maximised. keras-tuner
#: infers ``f1_score`` and the similarity and correlation metrics as ones to
#: minimise (the loss ``cosine_similarity`` is); these take precedence.
_MAXIMISED = (
    "accuracy", "acc", "auc", "precision", "recall", "f1_score", "fbeta_score",
    "r2_score", "iou", "io_u", "specificity", "sensitivity", "cosine_similarity",
    "pearson_correlation", "concordance_correlation",
)
_MINIMISED = ("loss", "error", "crossentropy", "hinge", "cost/")


def infer_direction(metric: str) -> Optional[str]:
    """``"max"`` or ``"min"`` for a logged metric name, or None if unknown."""
    base = metric[len("val_"):] if metric.startswith("val_") else metric
    if any(base.startswith(p) or base.endswith(p) for p in _MINIMISED):
        return "min"
    if any(base == p or base.endswith("_" + p) or base.startswith(p + "_") for p in _MAXIMISED):
        return "max"
    return metrics_tracking.infer_metric_direction(metric)


def create_objective(objective):
    """keras-tuner's `create_objective`, with metanas's direction inference."""
    if isinstance(objective, str):
        direction = infer_direction(objective)
        if direction is None:
            raise ValueError(
                f"cannot infer whether the objective {objective!r} is to be minimised "
                f"or maximised; pass keras_tuner.Objective({objective!r}, 'max') or 'min'."
            )
        return keras_tuner.Objective(objective, direction)
    if isinstance(objective, (list, tuple)):
        if not objective:
            raise ValueError("objective must name at least one metric, got an empty list.")
        created = [create_objective(o) for o in objective]
        names = [o.name for o in created]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:  # a Pareto front over one metric twice is that metric's ranking
            raise ValueError(f"objective must name each metric once, got {twice} twice or more "
                             f"in {names}.")
        return MultiObjective(created)
    if objective is None:
        return DefaultObjective()
    if not isinstance(objective, keras_tuner.Objective):
        raise ValueError(
            "objective must be a metric name, a keras_tuner.Objective, a list of them "
            f"or None, got {objective!r}."
        )
    if not isinstance(objective, MultiObjective) and objective.direction not in ("min", "max"):
        raise ValueError(
            f"the objective {objective.name!r} has direction {objective.direction!r}; "
            "it must be 'min' or 'max'."
        )
    return objective


def _direction(metric: str, direction: Optional[str]) -> str:
    if direction is None:
        direction = infer_direction(metric)
        if direction is None:
            raise ValueError(
                f"cannot infer whether {metric!r} is to be minimised or maximised; "
                "pass direction='min' or direction='max'."
            )
    if direction not in ("min", "max"):
        raise ValueError(f"direction must be 'min' or 'max', got {direction!r}.")
    return direction


class ConstrainedObjective(keras_tuner.Objective):
    """A metric traded off against a cost, softly (MnasNet) or as a hard budget.

    Soft (``hard=False``): the score is ``metric * (cost / target) ** w`` for a
    metric to maximise, and ``metric * (cost / target) ** -w`` for one to
    minimise, with ``w = weight[0]`` while ``cost <= target`` and ``weight[1]``
    above it (MnasNet's alpha and beta; its soft setting is -0.07 for both, its
    hard-ish one 0 and -1). The metric must be positive (accuracy, F1, AUC, a
    loss).

    Hard (``hard=True``): a trial over budget is infeasible and ranks below
    every feasible one (its score is pushed ``1e9`` past any metric value, the
    further the more it is over); among feasible trials the metric decides.
    `StrategyTuner.get_best_models` then never returns an over-budget model
    while a feasible one exists.

    Args:
        metric: The metric logged in training (``"val_accuracy"``,
            ``"val_f1_score"``, ``"val_auc"``, ...).
        cost: A cost measure, one of `COST_METRICS`, or any logged metric.
        target: The budget (same unit as ``cost``), > 0.
        weight: ``w``, or the pair ``(alpha, beta)``; ignored when ``hard``.
        hard: Treat ``target`` as a hard budget.
        direction: The metric's direction; inferred from its name by default.

    Example:

        >>> objective = ConstrainedObjective(
        ...     "val_accuracy", cost="cost/params", target=20_000, hard=True)
        >>> tuner = EvolutionSearch(build_model, objective=objective, max_trials=30)
    """

    def __init__(
        self,
        metric: str,
        *,
        cost: str = "cost/params",
        target: float,
        weight: Union[float, Tuple[float, float]] = -0.07,
        hard: bool = False,
        direction: Optional[str] = None,
    ) -> None:
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"metric must be a metric name, got {metric!r}.")
        if (isinstance(target, bool) or not isinstance(target, numbers.Real)
                or not 0 < target < math.inf):
            raise ValueError(f"target must be a finite number > 0, got {target!r}.")
        weights = weight if isinstance(weight, (tuple, list)) else (weight, weight)
        if len(weights) != 2 or not all(
            isinstance(w, numbers.Real) and not isinstance(w, bool) and math.isfinite(w)
            for w in weights
        ):
            raise ValueError(f"weight must be a finite number or a pair of them, got {weight!r}.")
        if not isinstance(cost, str) or not cost.strip():
            raise ValueError(f"cost must be a metric name such as 'cost/params', got {cost!r}.")
        if not isinstance(hard, bool):
            raise ValueError(f"hard must be True or False, got {hard!r}.")
        self.metric = metric
        self.cost = cost
        self.target = float(target)
        self.weights = (float(weights[0]), float(weights[1]))
        self.hard = bool(hard)
        kind = "budget" if self.hard else "tradeoff"
        super().__init__(name=f"{metric}|{kind}", direction=_direction(metric, direction))

    def has_value(self, logs) -> bool:
        return self.metric in logs and self.cost in logs

    def feasible(self, logs) -> bool:
        """Whether ``logs`` are within the budget (always True when soft)."""
        return not self.hard or float(logs[self.cost]) <= self.target

    def get_value(self, logs) -> float:
        if self.cost not in logs and self.metric in logs:
            # (The tuners log the costs in the fit they run; a run_trial of one's own
            # that trains otherwise has to add them.)
            raise ValueError(
                f"{self}: the trial's metrics hold {self.metric!r} but not the cost "
                f"{self.cost!r}. The tuners measure the cost/ ones unless cost_measures=False "
                "or the measure failed (a warning says why); a run_trial of your own that "
                "calls fit itself logs them with metanas.tuners.objectives.CostLogger() among "
                "fit's callbacks (or returns measure_costs(model) among its metrics).")
        value = float(logs[self.metric])
        ratio = float(logs[self.cost]) / self.target
        sign = 1.0 if self.direction == "max" else -1.0
        if self.hard:
            if ratio <= 1.0:
                return value
            return value - sign * INFEASIBLE_OFFSET * ratio
        if not ratio > 0.0 or value < 0.0:
            # MnasNet's product is undefined at a cost of 0 (a free model would
            # score infinitely) and flips its meaning for a negative metric.
            bad = (f"cost {self.cost!r} is {float(logs[self.cost])!r}; it must be > 0"
                   if not ratio > 0.0 else f"metric {self.metric!r} is {value!r}; it must be >= 0")
            raise ValueError(
                f"{self}: {bad} for a soft trade-off (metric * (cost / target) ** weight). "
                "Use hard=True for a budget, or a cost that is never 0 (cost/params).")
        weight = self.weights[0] if ratio <= 1.0 else self.weights[1]
        return value * ratio ** (sign * weight)

    def __eq__(self, other) -> bool:
        return isinstance(other, ConstrainedObjective) and vars(self) == vars(other)

    def __str__(self) -> str:
        return (
            f'ConstrainedObjective(metric="{self.metric}", cost="{self.cost}", '
            f"target={self.target:g}, hard={self.hard})"
        )


def with_computed_values(objective, metrics: Dict) -> Dict:
    """``metrics`` with the values of a computed ``objective`` added where missing.

    A list of objectives or a `ConstrainedObjective` has no value of its own
    in the metrics a trial logs or a `run_trial` returns: it is derived from
    them here, sub-objectives first (keras-tuner wants each one's value too).
    """
    parts = list(getattr(objective, "objectives", None) or [])
    for part in parts + [objective]:
        if part.name not in metrics and part.has_value(metrics):
            metrics = {**metrics, part.name: part.get_value(metrics)}
    return metrics


# ------------------------------------------------------------------- costs
def _flops(model: keras.Model) -> int:
    """Twice the multiply-adds of the Dense and convolution layers (a proxy).

    Other layers (activations, pooling, normalisation) cost little next to
    these and are not counted; a layer whose output shape is unknown counts
    as twice its parameters. It under-counts where weights are reused: a
    recurrent layer counts one time step, a layer shared by several inputs
    counts once, and attention's inner projections (no symbolic output)
    count twice their parameters, not per token. Compare models of one kind.
    """
    total = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        params = layer.count_params() if layer.built else 0
        if not params:
            continue
        try:
            shape = tuple(d for d in layer.output.shape[1:-1] if d is not None)
        except (AttributeError, ValueError):
            total += 2 * params
            continue
        positions = int(np.prod(shape)) if shape else 1
        if isinstance(layer, (keras.layers.Dense, keras.layers.EinsumDense)):
            total += 2 * params * positions
        elif isinstance(layer, keras.layers.Layer) and "Conv" in type(layer).__name__:
            total += 2 * params * positions
    return int(total)


def _input_batch(model: keras.Model, batch_size: int):
    arrays = []
    for tensor in model.inputs:
        shape = [batch_size] + [d if d is not None else 1 for d in tensor.shape[1:]]
        arrays.append(np.zeros(shape, dtype=keras.backend.standardize_dtype(tensor.dtype)))
    return arrays[0] if len(arrays) == 1 else arrays


def measure_costs(
    model: keras.Model,
    *,
    batch_size: int = 32,
    warmup: int = 3,
    repeats: int = 10,
) -> Dict[str, float]:
    """The costs of ``model``, measured the same way for every trial.

    Args:
        model: A built Keras model (a subclassed one gets no latency: it has
            no symbolic inputs to make a batch from).
        batch_size: Rows in the latency batch (zeros of the input's shape).
        warmup: Untimed calls before timing (tracing, caches).
        repeats: Timed calls; the latency is their median, in milliseconds.

    Returns:
        ``{"cost/params", "cost/flops", "cost/size_bytes", "cost/latency_ms"}``:
        ``cost/size_bytes`` is the bytes of every weight (the count of each
        times its dtype's size: what the model needs in memory or in a file,
        without a file format's overhead, which would dwarf a small model's
        weights and can order models wrongly); latency is left out when it
        cannot be measured.
    """
    costs: Dict[str, float] = {
        "cost/params": float(model.count_params()),
        "cost/flops": float(_flops(model)),
        "cost/size_bytes": float(sum(
            int(np.prod(w.shape)) * np.dtype(keras.backend.standardize_dtype(w.dtype)).itemsize
            for w in model.weights)),
    }
    if getattr(model, "inputs", None):  # a subclassed model has no symbolic inputs
        batch = _input_batch(model, batch_size)
        for _ in range(warmup):
            model(batch, training=False)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(batch, training=False)
            times.append((time.perf_counter() - start) * 1000.0)
        costs["cost/latency_ms"] = float(np.median(times))
    return costs


# ------------------------------------------------------------------ Pareto
def resolve_objectives(objective) -> List[keras_tuner.Objective]:
    """The objectives a Pareto front is taken over, from a tuner's objective."""
    if isinstance(objective, ConstrainedObjective):
        return [
            keras_tuner.Objective(objective.metric, objective.direction),
            keras_tuner.Objective(objective.cost, "min"),
        ]
    if isinstance(objective, MultiObjective):
        return list(objective.objectives)
    return [objective]


def _vectors(points: Sequence[Sequence[float]]) -> np.ndarray:
    return np.asarray(points, dtype=float).reshape(len(points), -1)


def non_dominated_ranks(points: Sequence[Sequence[float]]) -> List[int]:
    """NSGA-II front index of each point (0 = non-dominated); all maximised.

    Vectorised (an n x n dominance matrix): `MetanasOracle.get_best_trials`
    ranks every trial with it, and keras-tuner asks for the best trial after
    each one.
    """
    values = _vectors(points)
    n = len(values)
    if n == 0:
        return []
    at_least = (values[:, None, :] >= values[None, :, :]).all(axis=-1)
    better = (values[:, None, :] > values[None, :, :]).any(axis=-1)
    dominates = at_least & better  # [i, j]: i dominates j
    count = dominates.sum(axis=0)  # how many points dominate j
    ranks = np.full(n, -1)
    remaining = np.ones(n, dtype=bool)
    rank = 0
    while remaining.any():
        front = remaining & (count == 0)
        ranks[front] = rank
        remaining &= ~front
        count = count - dominates[front].sum(axis=0)
        rank += 1
    return ranks.tolist()


def crowding_distance(points: Sequence[Sequence[float]]) -> List[float]:
    """NSGA-II crowding distance of each point within its set (edges: inf).

    Per objective, the points with its lowest and highest value get an
    infinite distance and the others the gap between their neighbours,
    over the objective's span (Deb et al. 2002). An objective on which every
    point has the same value has no edges and no gaps: it adds nothing (as in
    pymoo), rather than making two arbitrary points edges.
    """
    values = _vectors(points)
    n, m = values.shape if len(values) else (0, 0)
    distance = np.zeros(n)
    if n <= 2:
        return [math.inf] * n
    for k in range(m):
        order = np.argsort(values[:, k], kind="stable")
        span = values[order[-1], k] - values[order[0], k]
        if span == 0:
            continue
        distance[order[0]] = distance[order[-1]] = math.inf
        for position in range(1, n - 1):
            distance[order[position]] += (
                values[order[position + 1], k] - values[order[position - 1], k]
            ) / span
    return distance.tolist()


def best_value(trial, objective: keras_tuner.Objective) -> Optional[float]:
    """The best value of ``objective``'s metric in ``trial``, by the objective's direction.

    The best over the trial's steps (epochs), NaN ones left out; None if the
    trial has no value of it (none logged, or only NaN).

    keras-tuner's ``trial.metrics.get_best_value`` takes the best by the
    direction the metric was registered with when first logged, which it
    infers from the name unless the metric is the search's objective itself:
    a maximised ``val_f1_score`` (or any name it does not know, such as a
    custom ``score``) registers as one to minimise, for each objective of a
    list and for a `ConstrainedObjective`'s metric, and its "best" is then
    its worst epoch.
    """
    if not trial.metrics.exists(objective.name):
        return None
    values = [float(np.mean(o.value)) for o in trial.metrics.get_history(objective.name)]
    values = [v for v in values if not math.isnan(v)]  # keras-tuner's nanmax/nanmin
    if not values:
        return None
    return max(values) if objective.direction == "max" else min(values)


def pareto_front(trials, objectives: Sequence[keras_tuner.Objective]) -> List:
    """The completed trials that no other completed trial dominates.

    Args:
        trials: keras-tuner ``Trial`` objects (any status; only COMPLETED ones
            with a value for every objective take part).
        objectives: The objectives, each with its direction; a trial's value
            of one is its best over the trial's steps in that direction
            (`best_value`).

    Returns:
        The non-dominated trials, best first on the first objective.
    """
    scored = []
    for trial in trials:
        if trial.status != "COMPLETED":
            continue
        vector = []
        for objective in objectives:
            value = best_value(trial, objective)
            if value is None:
                break
            vector.append(value if objective.direction == "max" else -value)
        else:
            scored.append((trial, vector))
    if not scored:
        return []
    ranks = non_dominated_ranks([v for _, v in scored])
    front = [(t, v) for (t, v), r in zip(scored, ranks) if r == 0]
    front.sort(key=lambda tv: -tv[1][0])
    return [t for t, _ in front]


def hypervolume_2d(points: Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """Area dominated by ``points`` (both maximised) and bounded by ``reference``."""
    values = [p for p in _vectors(points).tolist() if p[0] > reference[0] and p[1] > reference[1]]
    if not values:
        return 0.0
    values.sort(key=lambda p: -p[0])
    area, best_y = 0.0, reference[1]
    for x, y in values:
        if y > best_y:
            area += (x - reference[0]) * (y - best_y)
            best_y = y
    return float(area)


# --------------------------------------------------------- tuner plumbing
class CostLogger(keras.callbacks.Callback):
    """Measures the model's costs when training starts and logs them each epoch.

    The costs join the epoch logs, so keras-tuner records them as trial
    metrics and a `ConstrainedObjective` can read them. A model that is not
    built when training starts (a subclassed model, a Sequential without an
    Input) is measured at the end of its first epoch; a model whose costs
    cannot be measured trains without them (with a warning): an objective that
    needs them then fails that trial, any other does not notice.
    """

    def __init__(self, **measure_kwargs) -> None:
        super().__init__()
        self.measure_kwargs = measure_kwargs
        self.costs: Dict[str, float] = {}
        self._measured = False

    def _measure(self) -> None:
        self._measured = True
        try:
            self.costs = measure_costs(self.model, **self.measure_kwargs)
        except Exception as error:  # noqa: BLE001 - costs are optional for most objectives
            warnings.warn(f"could not measure the model's costs ({type(error).__name__}: "
                          f"{error}); the trial has no cost/ metrics. Pass cost_measures=False "
                          "to skip measuring.", stacklevel=2)
            self.costs = {}

    def on_train_begin(self, logs=None) -> None:
        self._measured = False
        self.costs = {}
        if self.model.built:
            self._measure()

    def on_epoch_end(self, epoch, logs=None) -> None:
        if not self._measured:
            self._measure()
        if logs is not None:
            logs.update(self.costs)


def objective_names(objective) -> List[str]:
    """The names training must log for ``objective`` to have a value."""
    if isinstance(objective, ConstrainedObjective):
        return [objective.metric, objective.cost]
    if isinstance(objective, MultiObjective):
        return [name for o in objective.objectives for name in objective_names(o)]
    if isinstance(objective, DefaultObjective):
        return []
    return [objective.name]


def check_objective_is_logged(objective, logged: Sequence[str]) -> None:
    """Raises ValueError, before any trial, if training will not log the objective."""
    missing = [name for name in objective_names(objective) if name not in logged]
    if missing:
        raise ValueError(
            f"the objective needs {missing}, which training does not log; it "
            f"logs {sorted(logged)}. Add the metric to model.compile(metrics=...), "
            "pass validation data for 'val_' names, or choose a logged objective."
        )
