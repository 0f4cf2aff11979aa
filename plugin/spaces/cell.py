"""A NAS-Bench-201-style cell search space for images.

Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural
Architecture Search", ICLR 2020. A cell is a DAG of ``num_nodes`` nodes; node
0 is the cell's input and every later node ``j`` is the sum, over each earlier
node ``i``, of one operation applied to node ``i``. Each edge ``i -> j``
chooses its operation among none, skip, 1x1 conv, 3x3 conv and 3x3 average
pool; the last node is the cell's output. One searched cell is stacked
``cells_per_stage`` times in each stage, and a stride-2 reduction that doubles
the filters separates the stages (the cell topology is shared, as in
NAS-Bench-201).

Every decision is a named hyperparameter: ``edge_{i}_{j}`` (operation of the
edge from node ``i`` to node ``j``), ``cells_per_stage`` and ``filters``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Dict, Optional, Sequence, Tuple

import keras
import keras_tuner
import numpy as np

from metanas.tuners.base import check_int

__all__ = ["OPERATIONS", "CellSpace", "Zeros", "build_cell_network", "cell_edges"]

#: The NAS-Bench-201 operations, by name.
OPERATIONS: Tuple[str, ...] = ("none", "skip", "conv1x1", "conv3x3", "avgpool3x3")


@keras.saving.register_keras_serializable(package="metanas")
class Zeros(keras.layers.Layer):
    """Zeros shaped like the input: a node whose every incoming edge is ``none``."""

    def call(self, inputs):
        return keras.ops.zeros_like(inputs)


def cell_edges(num_nodes: int) -> Tuple[Tuple[int, int], ...]:
    """The edges ``(i, j)``, ``i < j``, of a cell of ``num_nodes`` nodes."""
    return tuple((i, j) for j in range(1, num_nodes) for i in range(j))


#: What `check_choices` accepts of each kind of value.
_KINDS = {
    "positive_int": ("ints >= 1", lambda v: isinstance(v, int) and not isinstance(v, bool)
                     and v >= 1),
    "fraction": ("numbers in [0, 1)", lambda v: isinstance(v, (int, float))
                 and not isinstance(v, bool) and 0 <= v < 1),
    "positive_number": ("numbers > 0", lambda v: isinstance(v, (int, float))
                        and not isinstance(v, bool) and math.isfinite(v) and v > 0),
    "activation": ("Keras activation names", lambda v: isinstance(v, str) and _is_activation(v)),
}


def _is_activation(name: str) -> bool:
    try:
        keras.activations.get(name)
        return True
    except (ValueError, TypeError):
        return False


def check_choices(name: str, values: Sequence, allowed: Optional[Sequence] = None,
                  kind: Optional[str] = None) -> tuple:
    """Validates a non-empty list of choices: each among ``allowed`` if given,
    and of ``kind`` (a key of `_KINDS`) if given.

    A 1-D numpy array is a list, and numpy numbers are Python's: the choices
    are returned as a tuple of plain Python values.
    """
    given = values
    if isinstance(values, np.ndarray) and values.ndim == 1:
        values = values.tolist()
    values = tuple(_plain(v) for v in values) if isinstance(values, (list, tuple)) else ()
    try:
        repeats = len(set(values)) != len(values)
    except TypeError:  # an unhashable choice (a list): not a choice of any kind
        repeats = True
    if not values or repeats:
        raise ValueError(f"{name} must be a non-empty list without repeats, got {given!r}.")
    if allowed is not None and not set(values) <= set(allowed):
        raise ValueError(f"{name} must hold only {list(allowed)}, got {list(values)!r}.")
    if kind is not None:
        label, accepts = _KINDS[kind]
        bad = [v for v in values if not accepts(v)]
        if bad:
            raise ValueError(f"{name} must hold {label}, got {bad!r} in {list(values)!r}.")
    return values


def _plain(value):
    """``value``, or the Python number or string a numpy scalar holds."""
    return value.item() if isinstance(value, np.generic) else value


def check_name_and_tunable(name: Any, tunable: Any) -> Tuple[str, bool]:
    """Validates a `keras_tuner.HyperModel`'s ``name`` and ``tunable``.

    Returns:
        ``(name, tunable)``: a str or None (keras-tuner allows it), and a bool.

    Raises:
        ValueError: ``name`` is not a non-empty string or None, or ``tunable``
            not True or False.
    """
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"name must be a non-empty string or None, got {name!r}.")
    if not isinstance(tunable, (bool, np.bool_)):
        raise ValueError(f"tunable must be True or False, got {tunable!r}.")
    return name, bool(tunable)


def _operation(name: str, x, filters: int, label: str):
    if name == "skip":
        return x
    if name == "avgpool3x3":
        return keras.layers.AveragePooling2D(3, strides=1, padding="same", name=label)(x)
    size = 1 if name == "conv1x1" else 3
    # ReLU-Conv-BN, as in NAS-Bench-201.
    x = keras.layers.ReLU(name=f"{label}_relu")(x)
    x = keras.layers.Conv2D(filters, size, padding="same", use_bias=False, name=label)(x)
    return keras.layers.BatchNormalization(name=f"{label}_bn")(x)


def _cell(x, genotype: Dict[Tuple[int, int], str], num_nodes: int, filters: int, label: str):
    nodes = [x]
    for j in range(1, num_nodes):
        terms = [
            _operation(genotype[(i, j)], nodes[i], filters, f"{label}_e{i}{j}")
            for i in range(j)
            if genotype[(i, j)] != "none"
        ]
        if not terms:
            nodes.append(Zeros(name=f"{label}_n{j}_zeros")(x))
        elif len(terms) == 1:
            nodes.append(terms[0])
        else:
            nodes.append(keras.layers.Add(name=f"{label}_n{j}")(terms))
    return nodes[-1]


def build_cell_network(
    hp: keras_tuner.HyperParameters,
    x,
    *,
    num_nodes: int = 4,
    num_stages: int = 3,
    max_cells_per_stage: int = 2,
    filters: Sequence[int] = (8, 16, 32),
    operations: Sequence[str] = OPERATIONS,
    name: str = "cell",
):
    """The stacked-cell network on tensor ``x``, its decisions drawn from ``hp``.

    Returns the feature map after the last stage (no pooling, no head).
    """
    genotype = {
        (i, j): hp.Choice(f"edge_{i}_{j}", list(operations))
        for (i, j) in cell_edges(num_nodes)
    }
    cells = hp.Int("cells_per_stage", 1, max_cells_per_stage)
    width = hp.Choice("filters", list(filters))
    x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{name}_stem")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_stem_bn")(x)
    for stage in range(num_stages):
        if stage > 0:
            width *= 2
            x = keras.layers.ReLU(name=f"{name}_s{stage}_reduce_relu")(x)
            x = keras.layers.Conv2D(
                width, 3, strides=2, padding="same", use_bias=False,
                name=f"{name}_s{stage}_reduce",
            )(x)
            x = keras.layers.BatchNormalization(name=f"{name}_s{stage}_reduce_bn")(x)
        for c in range(cells):
            x = _cell(x, genotype, num_nodes, width, f"{name}_s{stage}c{c}")
    return keras.layers.ReLU(name=f"{name}_out")(x)


class CellSpace(keras_tuner.HyperModel):
    """NAS-Bench-201-style cell space as a KerasTuner `HyperModel` (a classifier).

    Args:
        input_shape: Image shape ``(height, width, channels)`` (a list, a tuple
            or a numpy array).
        num_classes: Classes of the softmax head.
        num_nodes: Nodes of the cell DAG (NAS-Bench-201 uses 4: 6 edges).
        num_stages: Stages of stacked cells; each after the first starts with
            a stride-2 reduction that doubles the filters.
        max_cells_per_stage: Upper bound of the ``cells_per_stage`` decision.
        filters: Choices of the stem's ``filters`` decision.
        operations: The edge operations searched (a subset of `OPERATIONS`).
        learning_rates: Choices of the ``learning_rate`` decision (Adam).

    Example:

        >>> from metanas.tuners import EvolutionSearch
        >>> space = CellSpace(input_shape=(8, 8, 1), num_classes=10)
        >>> tuner = EvolutionSearch(space, objective="val_accuracy", max_trials=20)
    """

    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        num_classes: int,
        num_nodes: int = 4,
        num_stages: int = 3,
        max_cells_per_stage: int = 2,
        filters: Sequence[int] = (8, 16, 32),
        operations: Sequence[str] = OPERATIONS,
        learning_rates: Sequence[float] = (1e-3, 3e-3, 1e-2),
        name: str = "cell_space",
        tunable: bool = True,
    ) -> None:
        super().__init__(*check_name_and_tunable(name, tunable))
        if isinstance(input_shape, np.ndarray) and input_shape.ndim == 1:
            input_shape = input_shape.tolist()
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 3 or not all(
                isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1
                for d in input_shape):
            raise ValueError(
                f"input_shape must be (height, width, channels) of ints >= 1, got {input_shape!r}."
            )
        self.input_shape = tuple(int(d) for d in input_shape)
        self.num_classes = check_int("num_classes", num_classes, low=2)
        self.num_nodes = check_int("num_nodes", num_nodes, low=2)
        self.num_stages = check_int("num_stages", num_stages, low=1)
        self.max_cells_per_stage = check_int("max_cells_per_stage", max_cells_per_stage, low=1)
        self.filters = check_choices("filters", filters, kind="positive_int")
        self.operations = check_choices("operations", operations, OPERATIONS)
        self.learning_rates = check_choices("learning_rates", learning_rates,
                                            kind="positive_number")

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        inputs = keras.Input(shape=self.input_shape)
        x = build_cell_network(
            hp, inputs, num_nodes=self.num_nodes, num_stages=self.num_stages,
            max_cells_per_stage=self.max_cells_per_stage, filters=self.filters,
            operations=self.operations,
        )
        x = keras.layers.GlobalAveragePooling2D()(x)
        outputs = keras.layers.Dense(self.num_classes, activation="softmax")(x)
        model = keras.Model(inputs, outputs, name="cell_network")
        model.compile(
            optimizer=keras.optimizers.Adam(hp.Choice("learning_rate", list(self.learning_rates))),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model
