"""Functions whose result carries no derivative: shape queries, constant constructors
(``zeros_like``), index-valued functions (``argmax``), tests (``allclose``). They run
on the plain values under the tracing and return plain results."""

from __future__ import annotations

import sys
import warnings
from typing import Any

import numpy as np

from ..batching import is_batched, map_plain
from ..errors import InPlaceError
from ..inplace import constant_like
from ..primitive import (
    Tracer,
    call_plain,
    dtype_of,
    foreign_array,
    register_function,
    shape_of,
    unwrap_derivatives,
)
from .elementwise import astype

# these read only the shape and dtype: a batched value stands in by one element's
_META = {np.shape, np.ndim, np.size, np.result_type, np.iscomplexobj, np.isrealobj,
         np.can_cast, np.min_scalar_type, np.diag_indices_from,
         np.tril_indices_from, np.triu_indices_from}


def _stand_in(a: Any) -> Any:
    return np.zeros(shape_of(a), dtype_of(a)) if isinstance(a, Tracer) else a


def _on_plain_values(func: Any) -> Any:
    meta = func in _META

    def handler(*args: Any, **kwargs: Any) -> Any:
        if meta:
            return func(*[_stand_in(a) for a in args],
                        **{k: _stand_in(v) for k, v in kwargs.items()})
        plain = [unwrap_derivatives(a) for a in args]
        plain_kw = {k: unwrap_derivatives(v) for k, v in kwargs.items()}
        if any(is_batched(a) for a in plain) or any(is_batched(v) for v in plain_kw.values()):
            return map_plain(handler, args, kwargs, f"numpy.{func.__name__}")
        # (a dualrev.replay recording's values: a recorded operation)
        return call_plain(func, plain, plain_kw)
    handler.__name__ = func.__name__
    return handler


for _f in (
    # queries about shape and type
    np.shape, np.ndim, np.size, np.result_type, np.iscomplexobj, np.isrealobj,
    np.can_cast, np.min_scalar_type,
    # integer- or boolean-valued results
    np.argmax, np.argmin, np.argsort, np.argwhere, np.nonzero, np.flatnonzero,
    np.count_nonzero, np.searchsorted, np.digitize, np.any, np.all,
    np.isclose, np.allclose, np.array_equal, np.array_equiv, np.iscomplex, np.isreal,
    np.isneginf, np.isposinf, np.sometrue if hasattr(np, "sometrue") else np.any,
    np.argpartition, np.lexsort, np.isin,
    np.diag_indices_from, np.tril_indices_from, np.triu_indices_from,
):
    register_function(_f, _on_plain_values(_f))
del _f


def _caller_stacklevel() -> int:
    """The ``stacklevel`` naming the first frame outside dualrev, for a warning issued
    by the function calling this one."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("dualrev"):
        frame, level = frame.f_back, level + 1
    return level


def _warning_caller(func: Any) -> Any:
    """``_on_plain_values(func)`` for a function NumPy deprecates: its warning reaches the
    user's line, as a call on plain arrays gives it, instead of dualrev's."""
    plain = _on_plain_values(func)

    def handler(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = plain(*args, **kwargs)
        level = _caller_stacklevel()
        for w in caught:
            warnings.warn(w.message, w.category, stacklevel=level)
        return out
    handler.__name__ = func.__name__
    return handler


# np.fix: deprecated in NumPy 2.5 in favour of np.trunc
register_function(np.fix, _warning_caller(np.fix))


# Constants shaped like a traced value are constants of its trace (batched under vmap):
# buffers whose in-place writes are recorded (out = np.zeros_like(x); out[i] = ...).
def _like(make: Any, make_like: Any) -> Any:
    def handler(a: Any, dtype: Any = None, order: str = "K", subok: bool = True,
                shape: Any = None, **kwargs: Any) -> Any:
        # one element's shape and dtype, NumPy vetting the keywords (device=)
        own = np.zeros_like(_stand_in(a), dtype=dtype, order=order, subok=subok,
                            shape=shape, **kwargs)
        p = foreign_array(a)
        if p is not None:  # zeros in a's library (Dask, CuPy), not on the host
            return _foreign_like(a, make_like, own, p)
        if not isinstance(a, Tracer):
            return make(own.shape, own.dtype)
        return constant_like(a, make, own)
    return handler


def _foreign_like(a: Any, make_like: Any, own: np.ndarray, p: Any) -> Any:
    # (NumPy's *_like functions dispatch to p's library with shape=; like= would hand
    # Dask dualrev's np.zeros wrapper, which it does not know)
    def made(shape: tuple[int, ...], dtype: Any) -> Any:
        return make_like(p, dtype=dtype, shape=shape)
    if not isinstance(a, Tracer):
        return made(own.shape, own.dtype)
    return constant_like(a, made, own)


register_function(np.zeros_like, _like(np.zeros, np.zeros_like))
# zeros: nothing uninitialised is read
register_function(np.empty_like, _like(np.zeros, np.zeros_like))
register_function(np.ones_like, _like(np.ones, np.ones_like))


@register_function(np.full_like)
def _full_like(a: Any, fill_value: Any, dtype: Any = None, order: str = "K",
               subok: bool = True, shape: Any = None, **kwargs: Any) -> Any:
    # The shape and dtype come from a; the values are fill_value's, whose derivative is
    # kept where the dtype can carry one (NumPy casts fill_value to it).
    zeros = np.zeros_like(_stand_in(a), dtype=dtype, order=order, subok=subok, shape=shape,
                          **kwargs)
    if isinstance(a, Tracer):
        buf = constant_like(a, np.zeros, zeros)
        if not isinstance(fill_value, Tracer):
            return buf + np.full_like(zeros, fill_value)
        return astype(buf + fill_value, zeros.dtype)
    if not isinstance(fill_value, Tracer):
        return np.full_like(zeros, fill_value)
    # (an integer or boolean dtype: astype gives the plain values, batched under vmap)
    return astype(zeros + fill_value, zeros.dtype)


@register_function(np.copyto)
def _copyto(dst: Any, src: Any, casting: str = "same_kind", where: Any = True) -> Any:
    raise InPlaceError("np.copyto (also reached by np.full_like(plain, traced_value))")


for _f in (np.linalg.matrix_rank, np.nanargmax, np.nanargmin):
    register_function(_f, _on_plain_values(_f))  # integer results
# a query about types: in _META before its handler is made (the handler reads _META
# once), so that under vmap it answers once for the batch instead of per element
_META.add(np.common_type)
register_function(np.common_type, _on_plain_values(np.common_type))
del _f


def _in_place(name: str) -> Any:
    def handler(*args: Any, **kwargs: Any) -> Any:
        raise InPlaceError(f"np.{name}")
    handler.__name__ = f"_{name}"
    handler.__doc__ = f"``numpy.{name}`` writes into its argument: refused on traced values."
    return handler


# (np.put into a traced array is a recorded write: dualrev/at.py)
for _name in ("place", "putmask", "fill_diagonal", "put_along_axis"):
    register_function(getattr(np, _name), _in_place(_name))
del _name
