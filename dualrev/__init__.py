"""dualrev: automatic differentiation of plain NumPy code.

Forward mode by dual numbers (``Dual``), reverse mode by a tape (``Tape``), one
catalogue of primitives serving both, and JAX-style functional transforms::

    import numpy as np
    import dualrev as dr

    f = lambda x: np.sum(np.tanh(x) ** 2)
    dr.grad(f)(np.ones(3))
"""

from __future__ import annotations

from types import ModuleType as _ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

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
    NonLinearError,
    PlainBufferError,
    ProgramCallError,
    ProgramFormatError,
    ProgramNotPortable,
    ProgressError,
    ReplayError,
    ReplayWarning,
    SingularSolutionError,
    SolverNotConvergedError,
    SparseOptionError,
    StaleViewError,
    TracerConversionError,
)
from .forward import Dual
from .linearization import linear_transpose, linearize
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
from .tree import (
    ravel_pytree,
    register_dataclass,
    register_pytree_node,
    register_pytree_node_class,
    tree_flatten,
    tree_map,
    tree_unflatten,
)

if TYPE_CHECKING:
    # What __getattr__ loads on first use, as type checkers and editors should see it:
    # the modules, and dualrev.graph as the function it is (not Any).
    from . import drawing as drawing
    from . import optimize as optimize
    from . import sparse as sparse
    from . import testing as testing
    from .drawing import graph

# dualrev's own primitives are declared (each keyed by its name, for saved programs):
# a primitive created from now on has a portable key only if given one (key=)
catalogue_declared()


# the submodules loaded on first use (dualrev.optimize loads SciPy's optimizers,
# dualrev.testing hypothesis); dualrev.graph is the function of dualrev.drawing (a module
# named differently, so that importing it does not replace the function)
_LAZY_MODULES = ("drawing", "optimize", "sparse", "testing")
_LAZY = (*_LAZY_MODULES, "graph")

if not TYPE_CHECKING:  # (checkers would read every misspelt dr.name as Any through it)

    def __getattr__(name: str) -> Any:
        if name in _LAZY_MODULES:
            import importlib

            return importlib.import_module(f"{__name__}.{name}")
        if name == "graph":
            import importlib

            fn = importlib.import_module(f"{__name__}.drawing").graph
            globals()["graph"] = fn
            return fn
        raise AttributeError(f"module 'dualrev' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names, the lazy ones included (IPython's completion reads this): what
    ``__all__`` lists, the submodules, loaded or not, and the module's own dunders;
    not the helpers this file imports for itself (``Any``, ``without_derivatives``)."""
    names = set(__all__) | set(_LAZY) | {"__version__"}
    for name, value in globals().items():
        if isinstance(value, _ModuleType) or (name.startswith("__") and name.endswith("__")):
            names.add(name)
    return sorted(names)


_T = TypeVar("_T")


def stop_gradient(x: _T) -> _T:
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
    out: _T = tree_map(without_derivatives, x)  # (the same structure as x)
    return out


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
    "NonLinearError",

    "NonFiniteError",
    "debug_nans",
    "InPlaceError",
    "PlainBufferError",
    "ProgramCallError",
    "ProgramFormatError",
    "ProgramNotPortable",
    "ProgressError",
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
    "linear_transpose",
    "linearize",
    "load_program",
    "ravel_pytree",
    "register_dataclass",
    "register_function",
    "register_pytree_node",
    "register_pytree_node_class",
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
