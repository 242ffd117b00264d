"""The primitive catalogue, one module per family. Importing it registers every entry."""

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

__all__ = [
    "complex", "contraction", "elementwise", "fft", "indexing", "linalg", "nondiff",
    "reductions", "scipy_functions", "selection", "shape", "special",
]
