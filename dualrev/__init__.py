"""dualrev: automatic differentiation of plain NumPy code.

Forward mode by dual numbers (``Dual``), reverse mode by a tape (``Tape``), one
catalogue of primitives serving both, and JAX-style functional transforms::

    import numpy as np
    import dualrev as dr

    f = lambda x: np.sum(np.tanh(x) ** 2)
    dr.grad(f)(np.ones(3))
"""

from __future__ import annotations

from typing import Any

from . import (
    catalogue,  # noqa: F401  (registers the primitive catalogue)
    implicit,  # noqa: F401  (installs scipy.optimize's solvers, differentiated implicitly)
    integrate,  # noqa: F401  (installs scipy.integrate.solve_ivp and quad)
)
from .at import at
from .batching import without_derivatives
from .bridges import to_jax, to_torch
from .checkpointing import checkpoint, checkpoint_loop
from .custom import custom_jvp, custom_vjp
from .debug import debug_nans
from .errors import (
    CheckpointError,
    ClosureError,
    CustomRuleError,
    DualrevError,
    EscapedTracerError,
    ForeignArrayError,
    InPlaceError,
    NoDerivativeRule,
    NonFiniteDerivativeWarning,
    NonFiniteError,
    PlainBufferError,
    ProgramCallError,
    ProgramFormatError,
    ProgramNotPortable,
    ReplayError,
    ReplayWarning,
    SingularSolutionError,
    SolverNotConvergedError,
    SparseOptionError,
    StaleViewError,
    TracerConversionError,
)
from .forward import Dual
from .primitive import Primitive, catalogue_declared, register_function, register_ufunc, strip
from .program_io import load_program, save_program
from .replay import replay
from .reverse import Tape, Traced
from .transforms import (
    grad,
    hessian,
    hvp,
    jacfwd,
    jacobian,
    jacrev,
    jvp,
    value_and_grad,
    vjp,
    vmap,
)
from .tree import ravel_pytree, register_pytree_node, tree_flatten, tree_map, tree_unflatten

# dualrev's own primitives are declared (each keyed by its name, for saved programs):
# a primitive created from now on has a portable key only if given one (key=)
catalogue_declared()


def __getattr__(name: str) -> Any:
    # dualrev.optimize, .sparse and .testing load SciPy's optimizers and test helpers
    # only when first used; so does dualrev.graph, the function of dualrev.drawing (a
    # module named differently, so that importing it does not replace the function).
    if name in ("optimize", "sparse", "testing", "drawing"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    if name == "graph":
        import importlib

        fn = importlib.import_module(f"{__name__}.drawing").graph
        globals()["graph"] = fn
        return fn
    raise AttributeError(f"module 'dualrev' has no attribute {name!r}")


def stop_gradient(x: Any) -> Any:
    """``x`` as a constant: no derivative flows through it, at any nesting level (under
    ``vmap`` it stays batched: a constant per element).

    Unlike ``strip``, it works on batched values and keeps every other level's batching;
    use it where a value must be treated as fixed (a target, a moving average, a detached
    estimate) or to drop the derivative of a function dualrev has no rule for.

    Args:
        x: a value, traced or plain, or a pytree of them.
    Returns:
        ``x`` with the same structure, shapes and values, carrying no derivative (plain
        values where ``x`` was differentiated; batched per element under ``vmap``).
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> print(dr.grad(lambda x: x * dr.stop_gradient(x))(3.0))
        3.0
        >>> print(dr.vmap(lambda x: 2 * dr.stop_gradient(x))(np.array([1.0, 2.0])))
        [2. 4.]
    """
    return tree_map(without_derivatives, x)


__version__ = "0.1.0"

__all__ = [
    "Dual",
    "CheckpointError",
    "ClosureError",
    "CustomRuleError",
    "DualrevError",
    "EscapedTracerError",
    "ForeignArrayError",
    "NonFiniteDerivativeWarning",
    "NonFiniteError",
    "debug_nans",
    "InPlaceError",
    "PlainBufferError",
    "ProgramCallError",
    "ProgramFormatError",
    "ProgramNotPortable",
    "ReplayError",
    "ReplayWarning",
    "SingularSolutionError",
    "SolverNotConvergedError",
    "SparseOptionError",
    "StaleViewError",
    "NoDerivativeRule",
    "Primitive",
    "Tape",
    "Traced",
    "TracerConversionError",
    "at",
    "checkpoint",
    "checkpoint_loop",
    "custom_jvp",
    "custom_vjp",
    "grad",
    "graph",
    "hessian",
    "hvp",
    "jacfwd",
    "jacobian",
    "jacrev",
    "jvp",
    "load_program",
    "ravel_pytree",
    "register_function",
    "register_pytree_node",
    "register_ufunc",
    "replay",
    "save_program",
    "stop_gradient",
    "strip",
    "to_jax",
    "to_torch",
    "tree_flatten",
    "tree_map",
    "tree_unflatten",
    "value_and_grad",
    "vjp",
    "vmap",
]
