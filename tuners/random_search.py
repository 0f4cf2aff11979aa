"""Random search: the baseline every strategy must beat."""

from __future__ import annotations

from typing import Optional

from metanas.tuners.base import MetanasOracle
from metanas.tuners.codec import Config

__all__ = ["RandomSearchOracle"]


class RandomSearchOracle(MetanasOracle):
    """Random search over a keras-tuner space, without repeats.

    Unlike `keras_tuner.oracles.RandomSearchOracle`, which gives up after 20
    collisions, it never proposes a configuration already tried (running trials
    included), and on a finite space it ends the search (``STOPPED``) exactly
    when every configuration has been tried. Conditional hyperparameters are
    drawn only while their conditions hold. Random search is a strong baseline
    for NAS (Li & Talwalkar, "Random Search and Reproducibility for Neural
    Architecture Search", UAI 2019).

    Args:
        objective, max_trials, seed, hyperparameters, initial_hps, and the
        remaining keras-tuner settings: see `MetanasOracle`.

    Example:

        >>> import keras_tuner
        >>> hp = keras_tuner.HyperParameters()
        >>> _ = hp.Choice("units", [16, 32, 64])
        >>> oracle = RandomSearchOracle(
        ...     objective="val_accuracy", max_trials=3, seed=1, hyperparameters=hp)
    """

    def propose(self, trial_id: str) -> Optional[Config]:
        return self.random_unique()
