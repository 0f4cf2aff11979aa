"""KerasTuner `Tuner`s for the metanas oracles, used like `keras_tuner.RandomSearch`."""

from __future__ import annotations

import inspect
import time
from typing import Any, Dict, Optional, Type

import keras_tuner
import numpy as np

from metanas.tuners import distributed
from metanas.tuners.base import MetanasOracle
from metanas.tuners.evolution import EvolutionOracle
from metanas.tuners.random_search import RandomSearchOracle

__all__ = ["StrategyTuner", "RandomSearch", "EvolutionSearch"]

#: Pause of a worker told to wait (IDLE) before it asks the chief again.
IDLE_SECONDS = 1.0


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
        if distributed.is_worker():
            # Workers share the chief's project directory: only the chief may
            # wipe it, or a late worker deletes the trials already run.
            kwargs["overwrite"] = False
        oracle = self.oracle_class(
            objective=objective,
            max_trials=max_trials,
            **split_oracle_kwargs(self.oracle_class, kwargs),
        )
        super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)

    @property
    def local_oracle(self) -> MetanasOracle:
        """The metanas oracle object of this process (a worker's proxy wraps it)."""
        return getattr(self.oracle, "_oracle", self.oracle)

    def search(self, *fit_args, **fit_kwargs):
        """Runs the search; see `keras_tuner.Tuner.search`.

        In keras-tuner's distributed mode the chief serves the oracle until the
        search is done (`metanas.tuners.distributed.serve_chief`) and each
        worker sends heartbeats for its running trial.
        """
        validate_fit_data(fit_args, fit_kwargs)
        if distributed.is_chief():
            if "verbose" in fit_kwargs:
                self.oracle.verbose = fit_kwargs["verbose"]
            self.save()
            distributed.serve_chief(self.oracle)
            return
        return super().search(*fit_args, **fit_kwargs)

    def pre_create_trial(self):
        # keras-tuner asks again at once after an IDLE answer; pause instead of
        # spinning on the chief while a possibly lost trial is still out.
        if getattr(self, "_asked_without_trial", False):
            time.sleep(IDLE_SECONDS)
        self._asked_without_trial = True
        super().pre_create_trial()

    def on_trial_begin(self, trial):
        self._asked_without_trial = False
        super().on_trial_begin(trial)

    def _try_run_and_update_trial(self, trial, *fit_args, **fit_kwargs):
        timeout = self.local_oracle.heartbeat_timeout
        if not distributed.is_worker() or timeout is None:
            return super()._try_run_and_update_trial(trial, *fit_args, **fit_kwargs)
        with distributed.Heartbeat(self.oracle, trial.trial_id, interval=timeout / 4):
            return super()._try_run_and_update_trial(trial, *fit_args, **fit_kwargs)


def validate_fit_data(fit_args, fit_kwargs) -> None:
    """Rejects NaN/inf inputs and mismatched lengths before the first trial.

    Left to training, they would fail every trial with a NaN loss or a shape
    error deep in Keras; here the error names the argument.
    """
    named = dict(zip(("x", "y"), fit_args))
    named.update({k: fit_kwargs[k] for k in ("x", "y") if k in fit_kwargs})
    validation = fit_kwargs.get("validation_data")
    if isinstance(validation, (tuple, list)) and len(validation) >= 2:
        named["validation_data[0]"], named["validation_data[1]"] = validation[:2]
    lengths = {}
    for name, value in named.items():
        if not isinstance(value, np.ndarray):
            continue
        if np.issubdtype(value.dtype, np.number) and not np.all(np.isfinite(value)):
            bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
            raise ValueError(
                f"{name} holds {bad} NaN or infinite value(s); the search needs "
                "finite numbers (impute or drop them first)."
            )
        lengths[name] = len(value)
    for x_name, y_name in (("x", "y"), ("validation_data[0]", "validation_data[1]")):
        if x_name in lengths and y_name in lengths and lengths[x_name] != lengths[y_name]:
            raise ValueError(
                f"{x_name} has {lengths[x_name]} samples but {y_name} has "
                f"{lengths[y_name]}; they must have the same length."
            )


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
