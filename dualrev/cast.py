"""Casts: ``cast_p``, the primitive of ``x.astype(dtype)`` and of ufuncs' ``dtype=``, and
``astype``, which a traced value's ``astype`` method runs (layer 2, beside tracer.py;
the catalogue's elementwise.py re-exports them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .levels import rebatch, without_derivatives
from .primitive import Primitive, bind, concrete, dtype_of, is_complex


def _cast_impl(x: Any, dtype: Any) -> Any:
    if type(x) is not np.ndarray and hasattr(type(x), "__array_function__") and not isinstance(
            x, np.generic):
        return x.astype(dtype)  # another library's array (Dask, CuPy) casts itself
    return np.asarray(x).astype(dtype)[()]


cast_p = Primitive("astype", _cast_impl, elementwise=True)
cast_p.defjvp(lambda g, ans, x, dtype: astype(g, dtype))
cast_p.defvjp(lambda g, ans, x, dtype: astype(
    np.real(g) if dtype_of(x).kind != "c" and is_complex(g) else g,
    dtype_of(x)), saves="x")


def astype(x: Any, dtype: Any) -> Any:
    """``x.astype(dtype)``: a float cast_p keeps the derivative; an integer or boolean cast_p
    has zero derivative (it is piecewise constant) and returns a plain array."""
    dt = np.dtype(dtype)
    if not np.issubdtype(dt, np.inexact):
        base = without_derivatives(x)
        if hasattr(type(base), "derived"):
            # a structural sparsity detection's value: the integers stay values computed
            # from the input (an index made of them may select other elements elsewhere)
            return base.derived(np.asarray(base.primal).astype(dt)[()])
        # under vmap every element at once (a cast maps over the batch axes)
        return rebatch(np.asarray(concrete(x)).astype(dt), x)
    if dtype_of(x) == dt:
        return x
    return bind(cast_p, (x,), {"dtype": dt})

