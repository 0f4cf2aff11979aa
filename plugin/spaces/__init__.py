"""metanas.spaces: architecture search spaces, every decision a named hyperparameter.

- `CellSpace`: a NAS-Bench-201-style cell space for images (a DAG cell whose
  every edge picks none / skip / 1x1 conv / 3x3 conv / 3x3 average pool,
  stacked in stages with reductions).
- `DenseSpace`: depth, per-layer width, activation, dropout and skip
  connections for tabular data.

Both are KerasTuner HyperModels; `CellBlock` and `DenseSpaceBlock` are the
same spaces as AutoKeras Blocks (importing them imports AutoKeras).
"""

from metanas.spaces.cell import OPERATIONS, CellSpace, build_cell_network, cell_edges
from metanas.spaces.dense import ACTIVATIONS, DenseSpace, build_dense_network

__all__ = [
    "ACTIVATIONS",
    "OPERATIONS",
    "CellBlock",
    "CellSpace",
    "DenseSpace",
    "DenseSpaceBlock",
    "build_cell_network",
    "build_dense_network",
    "cell_edges",
]


def __getattr__(name: str):
    if name in ("CellBlock", "DenseSpaceBlock"):
        from metanas.spaces import blocks

        return getattr(blocks, name)
    raise AttributeError(f"module 'metanas.spaces' has no attribute {name!r}")
