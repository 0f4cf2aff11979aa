"""Reference regularized evolution, as NAS-Bench-201 ran it, as a keras-tuner Oracle.

A deliberately plain implementation of the peer metanas evolution is measured
against, kept apart from `metanas.tuners.EvolutionOracle` so that changing the
latter's defaults cannot change the yardstick.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import keras_tuner
import numpy as np
from keras_tuner.engine import trial as trial_module

from metanas.tuners.base import check_int

__all__ = ["RegularizedEvolutionOracle"]


class RegularizedEvolutionOracle(keras_tuner.Oracle):
    """Regularized evolution (Real et al., "Regularized Evolution for Image
    Classifier Architecture Search", AAAI 2019) with NAS-Bench-201's settings.

    The first ``population_size`` trials are random. Then each trial samples
    ``sample_size`` members of the population uniformly (with replacement),
    takes the best as the parent and changes one uniformly chosen
    hyperparameter to a different value. The population is the
    ``population_size`` most recently finished trials, so the oldest member
    leaves as each child joins (aging). Repeated configurations are allowed,
    as in the reference code. Only ``Choice`` spaces are supported.

    Args:
        objective, max_trials, seed, hyperparameters: As for
            `keras_tuner.Oracle`.
        population_size: Members kept (10 in NAS-Bench-201's experiments).
        sample_size: Members per tournament (3 in NAS-Bench-201's experiments).

    Example:

        >>> oracle = RegularizedEvolutionOracle(
        ...     objective=keras_tuner.Objective("score", "max"), max_trials=100, seed=1)
    """

    def __init__(
        self,
        objective=None,
        max_trials: Optional[int] = None,
        *,
        seed: Optional[int] = None,
        hyperparameters=None,
        population_size: int = 10,
        sample_size: int = 3,
        **kwargs: Any,
    ) -> None:
        check_int("population_size", population_size, low=2)
        check_int("sample_size", sample_size, low=1)
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            seed=seed,
            **kwargs,
        )
        self.population_size = population_size
        self.sample_size = sample_size
        self._rng = np.random.default_rng(seed)

    def _random(self) -> Dict[str, Any]:
        return {
            hp.name: hp.values[int(self._rng.integers(len(hp.values)))]
            for hp in self.hyperparameters.space
        }

    def populate_space(self, trial_id: str) -> Dict[str, Any]:
        finished = [
            self.trials[t]
            for t in self.end_order
            if self.trials[t].status == trial_module.TrialStatus.COMPLETED
        ]
        if len(finished) < self.population_size:
            values = self._random()
        else:
            population = finished[-self.population_size :]
            picks = self._rng.integers(len(population), size=self.sample_size)
            sign = 1.0 if self.objective.direction == "max" else -1.0
            parent = max(
                (population[int(i)] for i in picks), key=lambda t: sign * float(t.score)
            )
            values = dict(parent.hyperparameters.values)
            space = self.hyperparameters.space
            hp = space[int(self._rng.integers(len(space)))]
            others = [v for v in hp.values if v != values[hp.name]]
            values[hp.name] = others[int(self._rng.integers(len(others)))]
        return {"status": trial_module.TrialStatus.RUNNING, "values": values}

    def get_state(self) -> Dict[str, Any]:
        state = super().get_state()
        state["rng"] = self._rng.bit_generator.state
        return state

    def set_state(self, state: Dict[str, Any]) -> None:
        super().set_state(state)
        self._rng = np.random.default_rng()
        self._rng.bit_generator.state = state["rng"]
