"""The primitive catalogue, one module per family. Importing it registers every entry."""

from ..inplace import install_view_handlers
from ..tracer import use_operator_primitives
from . import (
    complex,
    construction,
    contraction,
    elementwise,
    fft,
    indexing,
    linalg,
    nondiff,
    reductions,
    scipy_functions,
    scipy_interpolate,
    scipy_linalg,
    scipy_ndimage,
    scipy_optimize_functions,
    scipy_sparse,
    scipy_stats,
    selection,
    shape,
    special,
)

use_operator_primitives()
install_view_handlers()

__all__ = [
    "complex", "construction", "contraction", "elementwise", "fft", "indexing", "linalg",
    "nondiff", "reductions", "scipy_functions", "scipy_interpolate", "scipy_linalg",
    "scipy_ndimage", "scipy_optimize_functions", "scipy_sparse", "scipy_stats", "selection",
    "shape", "special",
]
