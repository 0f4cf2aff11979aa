"""Parent-selection rules for `EvolutionOracle`, as small swappable objects.

A rule sees only fitness values (higher is better; a failed trial is ``-inf``)
and the oracle's random source, and returns the index of the chosen parent.
"""

from __future__ import annotations

import abc
import math
from typing import Sequence

import numpy as np

from metanas.tuners.base import check_int

__all__ = ["Selection", "TournamentSelection", "RouletteSelection"]


class Selection(abc.ABC):
    """A parent-selection rule."""

    name: str = "selection"

    @abc.abstractmethod
    def select(self, fitness: Sequence[float], rng: np.random.Generator) -> int:
        """Index of the selected member of a population with ``fitness``."""

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
