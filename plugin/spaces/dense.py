"""A dense search space for tabular data: depth, per-layer width, activation,
dropout, and skip connections.

Every decision is a named hyperparameter: ``depth``; for each layer ``i``
(active only while ``depth > i``) ``units_{i}``, ``activation_{i}``,
``dropout_{i}`` and ``skip_{i}`` (add the layer's input, projected to its
width when they differ, to its output: a residual connection, He et al. 2016).
"""

from __future__ import annotations

from typing import Sequence

import keras
import keras_tuner

from metanas.spaces.cell import check_choices, check_name_and_tunable
from metanas.tuners.base import check_int

__all__ = ["ACTIVATIONS", "DenseSpace", "build_dense_network"]

ACTIVATIONS = ("relu", "elu", "tanh", "gelu", "silu")


def build_dense_network(
    hp: keras_tuner.HyperParameters,
    x,
    *,
    max_depth: int = 4,
    widths: Sequence[int] = (16, 32, 64, 128),
    activations: Sequence[str] = ACTIVATIONS,
    dropouts: Sequence[float] = (0.0, 0.1, 0.25, 0.5),
    name: str = "dense",
):
    """The searched stack of dense layers on tensor ``x``; returns its output."""
    depth = hp.Int("depth", 1, max_depth)
    for i in range(max_depth):
        with hp.conditional_scope("depth", list(range(i + 1, max_depth + 1))):
            if i >= depth:
                continue
            units = hp.Choice(f"units_{i}", list(widths))
            activation = hp.Choice(f"activation_{i}", list(activations))
            rate = hp.Choice(f"dropout_{i}", list(dropouts))
            skip = hp.Boolean(f"skip_{i}")
        y = keras.layers.Dense(units, activation=activation, name=f"{name}_{i}")(x)
        if skip:
            shortcut = x
            if x.shape[-1] != units:
                shortcut = keras.layers.Dense(units, use_bias=False, name=f"{name}_{i}_proj")(x)
            y = keras.layers.Add(name=f"{name}_{i}_skip")([y, shortcut])
        if rate > 0:
            y = keras.layers.Dropout(rate, name=f"{name}_{i}_dropout")(y)
        x = y
    return x


class DenseSpace(keras_tuner.HyperModel):
    """The dense tabular space as a KerasTuner `HyperModel`.

    Args:
        input_dim: Number of input features.
        num_outputs: Classes (classification) or targets (regression).
        task: ``"classification"`` (softmax, accuracy) or ``"regression"``
            (linear, mean squared error).
        max_depth: Upper bound of the ``depth`` decision.
        widths, activations, dropouts: Choices of each layer's decisions.
        learning_rates: Choices of the ``learning_rate`` decision (Adam).

    Example:

        >>> from metanas.tuners import RandomSearch
        >>> space = DenseSpace(input_dim=13, num_outputs=3)
        >>> tuner = RandomSearch(space, objective="val_accuracy", max_trials=20)
    """

    def __init__(
        self,
        *,
        input_dim: int,
        num_outputs: int,
        task: str = "classification",
        max_depth: int = 4,
        widths: Sequence[int] = (16, 32, 64, 128),
        activations: Sequence[str] = ACTIVATIONS,
        dropouts: Sequence[float] = (0.0, 0.1, 0.25, 0.5),
        learning_rates: Sequence[float] = (1e-3, 3e-3, 1e-2),
        name: str = "dense_space",
        tunable: bool = True,
    ) -> None:
        super().__init__(*check_name_and_tunable(name, tunable))
        if task not in ("classification", "regression"):
            raise ValueError(
                f"task must be 'classification' or 'regression', got {task!r}."
            )
        self.task = task
        self.input_dim = check_int("input_dim", input_dim, low=1)
        self.num_outputs = check_int("num_outputs", num_outputs, low=2 if task == "classification" else 1)
        self.max_depth = check_int("max_depth", max_depth, low=1)
        self.widths = check_choices("widths", widths, kind="positive_int")
        self.activations = check_choices("activations", activations, kind="activation")
        self.dropouts = check_choices("dropouts", dropouts, kind="fraction")
        self.learning_rates = check_choices("learning_rates", learning_rates,
                                            kind="positive_number")

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        inputs = keras.Input(shape=(self.input_dim,))
        x = build_dense_network(
            hp, inputs, max_depth=self.max_depth, widths=self.widths,
            activations=self.activations, dropouts=self.dropouts,
        )
        classify = self.task == "classification"
        outputs = keras.layers.Dense(
            self.num_outputs, activation="softmax" if classify else None, name="head"
        )(x)
        model = keras.Model(inputs, outputs, name="dense_network")
        model.compile(
            optimizer=keras.optimizers.Adam(hp.Choice("learning_rate", list(self.learning_rates))),
            loss="sparse_categorical_crossentropy" if classify else "mse",
            metrics=["accuracy"] if classify else ["mae"],
        )
        return model
