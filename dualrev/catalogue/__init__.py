"""The primitive catalogue, one module per family. Importing it registers every entry."""

from . import (
    contraction,
    elementwise,
    indexing,
    inspection,
    linalg,
    reductions,
    scipy_functions,
    selection,
    shape,
    special,
)

__all__ = [
    "contraction", "elementwise", "indexing", "inspection", "linalg", "reductions",
    "scipy_functions", "selection", "shape", "special",
]
