"""KerasTuner `Tuner`s for the metanas oracles, used like `keras_tuner.RandomSearch`."""

from __future__ import annotations

import inspect
from typing import Any, Dict, Optional, Type

import keras_tuner

from metanas.tuners.base import MetanasOracle
from metanas.tuners.evolution import EvolutionOracle
from metanas.tuners.random_search import RandomSearchOracle

__all__ = ["StrategyTuner", "RandomSearch", "EvolutionSearch"]


def split_oracle_kwargs(
    oracle_class: Type[MetanasOracle], kwargs: Dict[str, Any]
) -> Dict[str, Any]:
    """Pops from ``kwargs`` the settings ``oracle_class`` (or its bases) accept."""
    names = set()
    for cls in inspect.getmro(oracle_class):
        if issubclass(cls, MetanasOracle):
            names.update(inspect.signature(cls.__init__).parameters)
    names -= {"self", "kwargs", "objective", "max_trials"}
    return {name: kwargs.pop(name) for name in list(kwargs) if name in names}


class StrategyTuner(keras_tuner.Tuner):
    """A `keras_tuner.Tuner` driven by the metanas oracle ``oracle_class``.

    Subclasses set ``oracle_class``. Keyword arguments that the oracle accepts
    (``seed``, ``hyperparameters``, the strategy's settings, ...) go to it;
    every other keyword goes to `keras_tuner.Tuner` (``directory``,
    ``project_name``, ``overwrite``, ``executions_per_trial``, ...).
    """

    oracle_class: Type[MetanasOracle] = MetanasOracle

    def __init__(
        self,
        hypermodel=None,
        objective=None,
        max_trials: Optional[int] = 10,
        **kwargs: Any,
    ) -> None:
        oracle = self.oracle_class(
            objective=objective,
            max_trials=max_trials,
            **split_oracle_kwargs(self.oracle_class, kwargs),
        )
        super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)


class RandomSearch(StrategyTuner):
    """Random search without repeats; see `RandomSearchOracle`.

    Example:

        >>> tuner = RandomSearch(build_model, objective="val_accuracy",
        ...                      max_trials=10, seed=1, directory="runs")
        >>> tuner.search(x, y, validation_split=0.2, epochs=3)
    """

    oracle_class = RandomSearchOracle


class EvolutionSearch(StrategyTuner):
    """Steady-state evolution; see `EvolutionOracle` for the settings.

    Example:

        >>> tuner = EvolutionSearch(build_model, objective="val_accuracy",
        ...                         max_trials=30, population_size=10,
        ...                         selection="roulette", seed=1)
        >>> tuner.search(x, y, validation_split=0.2, epochs=3)
    """

    oracle_class = EvolutionOracle
