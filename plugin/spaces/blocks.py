"""The metanas search spaces as AutoKeras Blocks (imports AutoKeras).

    >>> import autokeras as ak
    >>> from metanas.spaces import CellBlock
    >>> node = ak.ImageInput()
    >>> out = ak.ClassificationHead()(CellBlock(num_stages=2)(node))
    >>> model = ak.AutoModel(node, out, tuner="evolution", max_trials=20)

Inside AutoKeras the decisions are named under the block's name, e.g.
``cell_block_1/edge_0_1`` or ``dense_space_block_1/units_0``.
"""

from __future__ import annotations

from typing import Any, Dict, Sequence

import keras
import tree
from autokeras.engine import block as block_module

from metanas.spaces.cell import OPERATIONS, build_cell_network, check_choices
from metanas.spaces.dense import ACTIVATIONS, build_dense_network
from metanas.tuners.base import check_int

__all__ = ["CellBlock", "DenseSpaceBlock"]


@keras.saving.register_keras_serializable(package="metanas")
class CellBlock(block_module.Block):
    """The NAS-Bench-201-style cell space (`metanas.spaces.CellSpace`) as a Block.

    Its output is the last stage's feature map; pair it with a head
    (``ak.ClassificationHead`` reduces it spatially). Arguments as for
    `CellSpace`, without the head's.
    """

    def __init__(
        self,
        *,
        num_nodes: int = 4,
        num_stages: int = 3,
        max_cells_per_stage: int = 2,
        filters: Sequence[int] = (8, 16, 32),
        operations: Sequence[str] = OPERATIONS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_nodes = check_int("num_nodes", num_nodes, low=2)
        self.num_stages = check_int("num_stages", num_stages, low=1)
        self.max_cells_per_stage = check_int("max_cells_per_stage", max_cells_per_stage, low=1)
        self.filters = list(check_choices("filters", filters, kind="positive_int"))
        self.operations = list(check_choices("operations", operations, OPERATIONS))

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            num_nodes=self.num_nodes, num_stages=self.num_stages,
            max_cells_per_stage=self.max_cells_per_stage, filters=self.filters,
            operations=self.operations,
        )
        return config

    def build(self, hp, inputs=None):
        x = tree.flatten(inputs)[0]
        return build_cell_network(
            hp, x, num_nodes=self.num_nodes, num_stages=self.num_stages,
            max_cells_per_stage=self.max_cells_per_stage, filters=self.filters,
            operations=self.operations, name=self.name,
        )


@keras.saving.register_keras_serializable(package="metanas")
class DenseSpaceBlock(block_module.Block):
    """The dense tabular space (`metanas.spaces.DenseSpace`) as a Block.

    Arguments as for `DenseSpace`, without the head's.
    """

    def __init__(
        self,
        *,
        max_depth: int = 4,
        widths: Sequence[int] = (16, 32, 64, 128),
        activations: Sequence[str] = ACTIVATIONS,
        dropouts: Sequence[float] = (0.0, 0.1, 0.25, 0.5),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_depth = check_int("max_depth", max_depth, low=1)
        self.widths = list(check_choices("widths", widths, kind="positive_int"))
        self.activations = list(check_choices("activations", activations, kind="activation"))
        self.dropouts = list(check_choices("dropouts", dropouts, kind="fraction"))

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update(
            max_depth=self.max_depth, widths=self.widths,
            activations=self.activations, dropouts=self.dropouts,
        )
        return config

    def build(self, hp, inputs=None):
        x = tree.flatten(inputs)[0]
        return build_dense_network(
            hp, x, max_depth=self.max_depth, widths=self.widths,
            activations=self.activations, dropouts=self.dropouts, name=self.name,
        )
