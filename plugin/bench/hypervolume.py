"""Hypervolume of NAS-Bench-201's two-objective task (accuracy up, model size down).

Both objectives are scaled to [0, 1] by the table's own range (accuracy from the
worst to the best seed-averaged value, model size from the largest to the
smallest), so the reference point is (0, 0) and the hypervolume of a set of
evaluated architectures is the fraction of the unit square they dominate; the
table's whole Pareto front gives the largest value reachable
(`best_hypervolume`).
"""

from __future__ import annotations

import functools
from typing import Sequence, Tuple

import numpy as np

from metanas.bench.tasks import MULTI_OBJECTIVE_METRICS, Task, load_task

__all__ = ["hypervolume_of", "best_hypervolume"]


def _scale(task: Task, points: Sequence[Tuple[float, float]]) -> np.ndarray:
    acc = task.columns[MULTI_OBJECTIVE_METRICS[0]]
    cost = task.columns[MULTI_OBJECTIVE_METRICS[1]]
    p = np.asarray(points, dtype=float).reshape(-1, 2)
    sign = 1.0 if task.maximize else -1.0
    lo, hi = (np.nanmin(acc), np.nanmax(acc)) if task.maximize else (np.nanmax(acc), np.nanmin(acc))
    x = sign * (p[:, 0] - lo) / (sign * (hi - lo))
    y = (np.nanmax(cost) - p[:, 1]) / (np.nanmax(cost) - np.nanmin(cost))
    return np.stack([x, y], axis=1)


def hypervolume_of(task: Task, points: Sequence[Tuple[float, float]]) -> float:
    """Scaled hypervolume of ``(score, model_size)`` points, in [0, 1]."""
    from metanas.tuners.objectives import hypervolume_2d

    if len(points) == 0:
        return 0.0
    scaled = _scale(task, points)
    # Points on the reference lines dominate no area; a tiny offset keeps them.
    return hypervolume_2d(scaled.tolist(), (-1e-12, -1e-12))


@functools.lru_cache(maxsize=None)
def best_hypervolume(task_name: str) -> float:
    """The hypervolume of the table's whole Pareto front (the most reachable)."""
    task = load_task(task_name)
    points = np.stack([task.columns[MULTI_OBJECTIVE_METRICS[0]],
                       task.columns[MULTI_OBJECTIVE_METRICS[1]]], axis=1)
    return hypervolume_of(task, points.tolist())
