"""SciPy's functions replaced by dispatchers: ``dispatch(owner, name, handler)`` puts a
thin wrapper in SciPy's module that calls SciPy's own function unless an argument is
traced, and dualrev's rule when one is (catalogue/scipy_functions.py explains why).

The table of dispatchers (``ORIGINALS``, keyed by the dispatcher, SciPy's function its
value) lives here, below the traced values, because their conversion error asks it
which SciPy function converted a traced argument (``scipy_caller``); only ``dispatch``
and ``note_dispatcher`` write it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from .diagnose import frame_of, user_callee
from .primitive import Tracer, foreign_array
from .tree import tree_flatten

ORIGINALS: dict[Any, Callable[..., Any]] = {}  # dispatcher -> SciPy's function

#: the SciPy function whose rule runs on another library's arrays (Dask, CuPy) while it
#: runs, else None: NumPy's array constructors replaced while a transform runs refuse to
#: convert such arrays then (catalogue/construction.py), where a Dask array would be
#: computed, or a CuPy one copied, silently. Only the dispatchers write it.
FOREIGN_CALL: list[Any] = [None]


def _traced(args: Any, kwargs: Any) -> bool:
    leaves, _ = tree_flatten((list(args), kwargs))
    return any(isinstance(v, Tracer) for v in leaves)


def _foreign(args: Any, kwargs: Any) -> bool:
    leaves, _ = tree_flatten((list(args), kwargs))
    return any(type(v) is not np.ndarray and foreign_array(v) is not None for v in leaves)


def dispatch(owner: Any, name: str, handler: Callable[..., Any],
             always: bool = False) -> None:
    """Replace ``owner.name`` by a dispatcher to ``handler`` for traced arguments (for
    every call with ``always``: a handler that also serves plain calls, such as the
    integrators, whose callbacks may meet traced values even when no argument is)."""
    original = getattr(owner, name)
    original = ORIGINALS.get(original, original)

    @functools.wraps(original)
    def dispatcher(*args: Any, **kwargs: Any) -> Any:
        if always or _traced(args, kwargs):
            if not _foreign(args, kwargs):
                return handler(*args, **kwargs)
            before, FOREIGN_CALL[0] = FOREIGN_CALL[0], original
            try:
                return handler(*args, **kwargs)
            finally:
                FOREIGN_CALL[0] = before
        return original(*args, **kwargs)

    ORIGINALS[dispatcher] = original
    setattr(owner, name, dispatcher)


def note_dispatcher(dispatcher: Callable[..., Any], original: Any) -> None:
    """Record a dispatcher made elsewhere (a SciPy class's method or constructor that the
    catalogue replaces itself: scipy_interpolate.py, scipy_sparse.py) with the SciPy
    function or class it stands for, beside those ``dispatch`` makes: the conversion
    error (``scipy_caller``) and the listings of routed functions then know it."""
    ORIGINALS[dispatcher] = original


def _public_name(f: Any) -> str:
    module = str(getattr(f, "__module__", "scipy"))
    public = ".".join(p for p in module.split(".") if not p.startswith("_")) or "scipy"
    return f"{public}.{getattr(f, '__qualname__', getattr(f, '__name__', f))}"


def foreign_call_name() -> str | None:
    """The public name of the SciPy function whose rule runs on another library's arrays
    (``FOREIGN_CALL``), None when there is none."""
    f = FOREIGN_CALL[0]
    return None if f is None else _public_name(f)


def scipy_caller() -> str | None:
    """Why a traced value reached ``np.asarray`` inside the SciPy function the user
    called, for the conversion error; None where the user called no function dualrev
    routes (the diagnosis then names what they called). The function named is always
    the one on the user's line, never one it delegates to: several SciPy functions share
    one wrapper's code (``_apply_over_batch``), so frames are matched with their closure."""
    callee = user_callee()
    if callee is None:
        return None
    if any(getattr(d, "__code__", None) is callee.f_code for d in ORIGINALS):
        # the user called a function dualrev routes: its rule (or SciPy code the rule
        # delegates to) met an argument it does not differentiate
        original = callee.f_locals.get("original", callee.f_locals.get("klass"))
        name = _public_name(original) if original is not None else "a SciPy function"
        return (f"{name}: dualrev's rule for it converts a traced argument with np.asarray "
                "(an argument or a case it does not differentiate; docs/catalogue.md "
                "lists what it supports). Pass that argument as a plain value, or give "
                "the call a rule with @dualrev.custom_jvp / @dualrev.custom_vjp")
    for f in ORIGINALS.values():
        if frame_of(callee, f):
            return (f"{_public_name(f)} (reached without dualrev's dispatcher: was it "
                    "imported with `from scipy... import` before `import dualrev`? import "
                    "dualrev first, or call it through its module) converting its argument "
                    "with np.asarray")
    return None

