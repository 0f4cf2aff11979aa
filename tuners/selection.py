"""Parent-selection rules for `EvolutionOracle`, as small swappable objects.

A rule sees only fitness values (higher is better; a failed trial is ``-inf``)
and the oracle's random source, and returns the index of the chosen parent.
A NaN fitness (a score that is not a number) counts as a failed trial.
"""

from __future__ import annotations

import abc
import math
from typing import List, Sequence

import numpy as np

from metanas.tuners.base import check_int

__all__ = ["Selection", "TournamentSelection", "RouletteSelection", "NSGA2Selection"]


def _scalar_fitness(fitness: Sequence[float]) -> List[float]:
    """``fitness`` as floats, NaN (no score) as ``-inf``: a failed trial.

    NaN compares false with everything: kept as it is, a tournament that drew it
    first would keep it, and a sort (the roulette's ranks) would order the
    others wrongly around it.
    """
    return [-math.inf if math.isnan(f) else f for f in map(float, fitness)]


class Selection(abc.ABC):
    """A parent-selection rule."""

    name: str = "selection"
    #: Whether ``fitness`` holds one vector per member (one value per objective).
    multi_objective: bool = False

    @abc.abstractmethod
    def select(self, fitness: Sequence[float], rng: np.random.Generator) -> int:
        """Index of the selected member of a population with ``fitness``."""

    def discard(self, fitness: Sequence[float], rng: np.random.Generator) -> int:
        """Index of the member to remove when aging is off: the worst, oldest first."""
        return int(np.argmin(np.asarray(_scalar_fitness(fitness), dtype=float)))

    def validate(self, population_size: int) -> None:
        """Raises ValueError if the rule cannot work on ``population_size``."""

    def get_config(self) -> dict:
        return {"name": self.name}


class TournamentSelection(Selection):
    """Tournament selection: the fittest of ``size`` members drawn at random.

    Members are drawn without replacement; ties go to the first one drawn. With
    ``size=1`` this is uniform selection; larger tournaments select harder.
    Regularized evolution (Real et al., "Regularized Evolution for Image
    Classifier Architecture Search", AAAI 2019) uses it with aging.

    Args:
        size: Members per tournament, at least 1 and at most the population.

    Example:

        >>> from metanas.tuners import EvolutionOracle
        >>> oracle = EvolutionOracle(selection=TournamentSelection(size=3))
    """

    name = "tournament"

    def __init__(self, *, size: int = 5) -> None:
        self.size = check_int("tournament_size", size, low=1)

    def validate(self, population_size: int) -> None:
        if self.size > population_size:
            raise ValueError(
                f"tournament_size must be at most population_size "
                f"({population_size}), got {self.size}."
            )

    def select(self, fitness: Sequence[float], rng: np.random.Generator) -> int:
        n = len(fitness)
        if n == 0:
            raise ValueError("cannot select from an empty population.")
        fitness = _scalar_fitness(fitness)
        drawn = rng.choice(n, size=min(self.size, n), replace=False)
        best = int(drawn[0])
        for index in drawn[1:]:
            if fitness[int(index)] > fitness[best]:
                best = int(index)
        return best

    def get_config(self) -> dict:
        return {"name": self.name, "size": self.size}


class RouletteSelection(Selection):
    """Roulette-wheel (fitness-proportional) selection on *ranks*.

    The wheel gives member ``i`` a slice proportional to its rank: 1 for the
    worst completed member up to ``n`` for the best; failed members get no
    slice (unless every member failed: then the choice is uniform). Ranking
    (Baker, "Adaptive Selection Methods for Genetic Algorithms", 1985) rather
    than shifting raw scores on the worst keeps the wheel positive and
    scale-free: accuracies bunched in [0.90, 0.92] and a loss that spans 1e-4
    to 10 select alike, a failed trial (-inf) needs no made-up number, and the
    worst completed member keeps a chance instead of a zero slice.

    Example:

        >>> from metanas.tuners import EvolutionOracle
        >>> oracle = EvolutionOracle(selection="roulette")
    """

    name = "roulette"

    def select(self, fitness: Sequence[float], rng: np.random.Generator) -> int:
        n = len(fitness)
        if n == 0:
            raise ValueError("cannot select from an empty population.")
        fitness = _scalar_fitness(fitness)
        alive = [i for i in range(n) if fitness[i] != -math.inf]
        if not alive:
            return int(rng.integers(n))
        order = sorted(alive, key=lambda i: fitness[i])
        weights = np.zeros(n)
        start = 0
        while start < len(order):  # equal fitness, equal slice: average ranks
            stop = start
            while stop + 1 < len(order) and fitness[order[stop + 1]] == fitness[order[start]]:
                stop += 1
            for index in order[start : stop + 1]:
                weights[index] = (start + stop) / 2 + 1
            start = stop + 1
        return int(rng.choice(n, p=weights / weights.sum()))


def _finite(points) -> np.ndarray:
    """Vectors with -inf (failed trials) put just below the worst finite value."""
    values = np.asarray(points, dtype=float).reshape(len(points), -1)
    for k in range(values.shape[1]):
        column = values[:, k]
        finite = column[np.isfinite(column)]
        floor = (finite.min() - 1.0 - abs(finite.min())) if finite.size else -1.0
        column[~np.isfinite(column)] = floor
    return values


class NSGA2Selection(Selection):
    """NSGA-II selection over several objectives (Pareto search).

    Members are ordered by non-dominated front, then by crowding distance
    (wider gaps first), as in NSGA-II (Deb et al., "A Fast and Elitist
    Multiobjective Genetic Algorithm: NSGA-II", IEEE TEC 2002). ``select`` is a
    binary tournament on that order; ``discard`` (used with ``aging=False``)
    removes the last member in it, so the population keeps the front and its
    spread. Fitness is one vector per member, every entry maximised; the
    objectives come from the oracle's objective (a list, or a
    `ConstrainedObjective`'s metric and cost).

    Example:

        >>> oracle = EvolutionOracle(
        ...     objective=[keras_tuner.Objective("val_accuracy", "max"),
        ...                keras_tuner.Objective("cost/params", "min")],
        ...     selection="nsga2", aging=False)
    """

    name = "nsga2"
    multi_objective = True

    def _order_keys(self, fitness):
        from metanas.tuners.objectives import crowding_distance, non_dominated_ranks

        values = _finite(fitness)
        ranks = non_dominated_ranks(values)
        crowding = [0.0] * len(values)
        for rank in set(ranks):
            members = [i for i, r in enumerate(ranks) if r == rank]
            for i, distance in zip(members, crowding_distance(values[members])):
                crowding[i] = distance
        return [(ranks[i], -crowding[i]) for i in range(len(values))]

    def select(self, fitness, rng: np.random.Generator) -> int:
        n = len(fitness)
        if n == 0:
            raise ValueError("cannot select from an empty population.")
        keys = self._order_keys(fitness)
        first, second = (int(i) for i in rng.choice(n, size=2, replace=n < 2))
        return second if keys[second] < keys[first] else first

    def discard(self, fitness, rng: np.random.Generator) -> int:
        keys = self._order_keys(fitness)
        worst = max(keys)
        return keys.index(worst)
