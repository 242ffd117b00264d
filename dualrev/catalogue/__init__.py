"""The primitive catalogue, one module per family. Importing it registers every entry."""

from ..tracer import use_operator_primitives
from . import (
    complex,
    contraction,
    elementwise,
    fft,
    indexing,
    linalg,
    nondiff,
    reductions,
    scipy_functions,
    selection,
    shape,
    special,
)

use_operator_primitives()

__all__ = [
    "complex", "contraction", "elementwise", "fft", "indexing", "linalg", "nondiff",
    "reductions", "scipy_functions", "selection", "shape", "special",
]
