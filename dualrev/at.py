"""Functional index updates, and the in-place writes recorded with them:

    y = dualrev.at(x)[idx].set(v)     # like x[idx] = v, on a copy
    y = dualrev.at(x)[idx].add(v)     # like np.add.at(x, idx, v): repeats accumulate
    y = dualrev.at(x)[idx].multiply(v)

They work on plain and traced arrays alike and are differentiable in ``x`` and ``v``.

``x[idx] = v`` on a traced ``x`` is ``dualrev.at(x)[idx].set(v)`` with the object ``x``
rebound to the result (``assign``; views and their bases: dualrev/inplace.py), and so
are ``x op= y``, ``x.fill``, ``x.sort``, ``ufunc(..., out=x)`` and ``np.add.at(x, ...)``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .catalogue.indexing import _positions, canonical_index, getitem, is_basic, scatter_p
from .errors import InPlaceError
from .inplace import (
    Stale,
    describe,
    is_scalar_like,
    key_text,
    poison_views,
    rebind,
    refuse_scalar_write,
)
from .primitive import METHODS, Tracer, bind, dtype_of, shape_of, strip


class _Update:
    __slots__ = ("x", "idx")

    def __init__(self, x: Any, idx: Any) -> None:
        self.x = x
        self.idx = canonical_index(idx)

    def _flat(self) -> tuple[np.ndarray, tuple[int, ...]]:
        shape = shape_of(self.x)
        return np.ravel(_positions(shape, self.idx)), shape

    def get(self) -> Any:
        """``x[idx]``."""
        return getitem(self.x, self.idx)

    def add(self, v: Any) -> Any:
        """``x`` with ``v`` added at ``idx``; repeated indices accumulate."""
        pos, shape = self._flat()
        vals = np.ravel(np.broadcast_to(v, shape_of(_positions(shape, self.idx)))) + 0.0
        added = bind(scatter_p, (vals,), {"idx": (pos,), "nb": 0, "shape": (int(np.prod(shape)),)})
        return self.x + np.reshape(added, shape)

    def multiply(self, v: Any) -> Any:
        """``x`` multiplied by ``v`` at ``idx`` (repeats multiply repeatedly)."""
        pos, shape = self._flat()
        size = int(np.prod(shape))
        vals = np.ravel(np.broadcast_to(v, shape_of(_positions(shape, self.idx)))) + 0.0
        out = np.ravel(self.x)
        # apply occurrence by occurrence, so repeated positions compound exactly
        for k, p in enumerate(pos):
            out = np.where(np.arange(size) == p, out * getitem(vals, (k,)), out)
        return np.reshape(out, shape)

    def set(self, v: Any) -> Any:
        """``x`` with ``v`` written at ``idx`` (the last write wins, as in NumPy)."""
        pos, shape = self._flat()
        size = int(np.prod(shape))
        vals = np.ravel(np.broadcast_to(v, shape_of(_positions(shape, self.idx)))) + 0.0
        _, first_from_end = np.unique(pos[::-1], return_index=True)
        keep = pos.size - 1 - first_from_end  # the last occurrence of each position
        kept = getitem(vals, (keep,))
        placed = bind(scatter_p, (kept,), {"idx": (pos[keep],), "nb": 0, "shape": (size,)})
        mask = np.zeros(size, dtype=bool)
        mask[pos] = True
        return np.reshape(np.where(mask, placed, np.ravel(self.x)), shape)


class _Indexer:
    __slots__ = ("x",)

    def __init__(self, x: Any) -> None:
        self.x = x

    def __getitem__(self, idx: Any) -> _Update:
        return _Update(self.x, idx)


def at(x: Any) -> _Indexer:
    """Functional index updates: ``dualrev.at(x)[idx].set(v)`` / ``.add(v)`` /
    ``.multiply(v)`` / ``.get()`` return new arrays (``x`` is left unchanged).

    Traced arrays cannot be written in place (``x[idx] = v`` raises ``InPlaceError``); these
    are the differentiable replacements, in ``x`` and in ``v``, and work on plain arrays
    alike:

    - ``.set(v)``: like ``x[idx] = v`` on a copy (for repeated indices the last write wins,
      as in NumPy);
    - ``.add(v)``: like ``np.add.at(x, idx, v)`` on a copy: repeated indices accumulate;
    - ``.multiply(v)``: ``x`` multiplied by ``v`` at ``idx`` (repeats multiply repeatedly);
    - ``.get()``: ``x[idx]``.

    ``v`` is broadcast to the shape of ``x[idx]``; ``idx`` is any NumPy index (ints, slices,
    integer arrays, boolean masks).

    Args:
        x: the array (plain or traced); a list or scalar is converted to a float array.
    Returns:
        An indexer: ``at(x)[idx]`` has the methods above, each returning a new array of
        ``x``'s shape (``.get()``: of ``x[idx]``'s shape).
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> x = np.zeros(4)
        >>> print(dr.at(x)[1].set(5.0), x)
        [0. 5. 0. 0.] [0. 0. 0. 0.]
        >>> print(dr.at(x)[np.array([0, 0, 2])].add(1.0))
        [2. 0. 1. 0.]
        >>> print(dr.grad(lambda x: np.sum(dr.at(x)[0].set(5.0) ** 2))(np.ones(3)))
        [0. 2. 2.]
    """
    if not hasattr(x, "shape"):
        x = np.asarray(strip(x), dtype=float)
    return _Indexer(x)


# ------------------------------------------------------------------ in-place writes
def assign(obj: Any, new: Any, write: str) -> None:
    """Rebind ``obj`` to ``new`` in place; if ``obj`` is a view made by basic indexing,
    the write goes into its base (and on up), and every other view of a written object
    becomes stale. ``write`` names the write for error messages (``x[1:3]``)."""
    if isinstance(obj.primal, Stale):
        obj.primal._fail()
    chain = [(obj, new)]
    cur, val = obj, new
    while True:
        try:
            base, key = cur._base
        except AttributeError:
            break
        if isinstance(key, str):
            raise InPlaceError(
                f"a write into {describe(key)} (a view of x, which dualrev cannot write "
                "through)", rewrite="write into x itself instead: reshape/transpose the "
                "value you write, or index x directly (x[...] = v)")
        if isinstance(base.primal, Stale):
            base.primal._fail()
        val = functional_set(base, key, val)
        chain.append((base, val))
        cur = base
    # from the root down: each written base keeps its one view on the chain (which is
    # rebound to the matching value next); every other view of it goes stale
    for i in range(len(chain) - 1, -1, -1):
        o, v = chain[i]
        poison_views(o, chain[i - 1][0] if i else None, write)
        rebind(o, v)


def functional_set(x: Any, key: tuple[Any, ...], v: Any) -> Any:
    """``x`` with ``v`` written at the canonical index ``key``, in ``x``'s dtype (as
    NumPy's assignment casts): the value ``x[key] = v`` leaves in ``x``."""
    xd = dtype_of(x)
    vd = dtype_of(v)
    if vd.kind == "c" and xd.kind != "c":
        warnings.warn(np.exceptions.ComplexWarning(
            "Casting complex values to real discards the imaginary part"), stacklevel=4)
        v = np.real(v)
    shape = shape_of(x)
    if is_basic(key):
        target = np.zeros(shape, dtype=bool)[key].shape
        if shape_of(v) != target:
            v = np.broadcast_to(v, target)
        placed = bind(scatter_p, (v,), {"idx": key, "nb": 0, "shape": shape})
        mask = np.zeros(shape, dtype=bool)
        mask[key] = True
        out = np.where(mask, placed, x)
    else:
        out = at(x)[key].set(v)
    if dtype_of(out) != xd:
        out = METHODS["astype"](out, xd)
    return out


# ------------------------------------------------------------------ the entry points
def setitem(x: Any, key: Any, value: Any) -> None:
    """``x[key] = value`` on a traced ``x``."""
    refuse_scalar_write(x, "x[...] = v")
    key = canonical_index(key)
    base = getattr(value, "_base", None) if isinstance(value, Tracer) else None
    if base is not None and base[0] is x and base[1] == key:
        # x[key] op= v: Python's getitem gave a view, whose in-place operator already
        # wrote through it; this store writes the same values again
        return
    assign(x, functional_set(x, key, value), f"x[{key_text(key)}]")


_INPLACE = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide,
            "//": np.floor_divide, "%": np.remainder, "**": np.power, "@": np.matmul,
            "&": np.bitwise_and, "|": np.bitwise_or, "^": np.bitwise_xor,
            "<<": np.left_shift, ">>": np.right_shift}


def inplace_op(x: Any, op: str, new: Any) -> Any:
    """``x op= y`` given ``new = x op y``: ``x`` rebound to ``new`` in its own dtype and
    shape, refused where NumPy refuses (a result NumPy cannot cast back, or of another
    shape)."""
    if op in _INPLACE:
        if is_scalar_like(x):
            # NumPy's scalars are immutable: s += v is s = s + v (a new object, of the
            # result's shape and dtype); another name bound to s keeps the old value
            return new
    else:
        refuse_scalar_write(x, f"numpy.{op}(..., out=x)")
    name = _INPLACE[op].__name__ if op in _INPLACE else op
    xs, ns = shape_of(x), shape_of(new)
    xd, nd = dtype_of(x), dtype_of(new)
    if xs != ns:
        raise ValueError(f"non-broadcastable output operand with shape {xs} doesn't "
                         f"match the broadcast shape {ns}")
    if nd != xd:
        if not np.can_cast(nd, xd, "same_kind"):
            # NumPy's words (its UFuncTypeError is a TypeError)
            raise TypeError(f"Cannot cast ufunc '{name}' output from {nd!r} to {xd!r} "
                            "with casting rule 'same_kind'")
        new = METHODS["astype"](new, xd)
    assign(x, new, f"x {op}=" if op in _INPLACE else f"numpy.{op}(..., out=x)")
    return x


def ufunc_out(ufunc: Any, inputs: Any, kwargs: dict[str, Any]) -> Any:
    """``ufunc(*inputs, out=x)`` with a traced ``x``: the result written into ``x``.
    Other ``out=`` (a plain array, several outputs, ``where=``) raise InPlaceError."""
    out = kwargs.pop("out")
    outs = out if isinstance(out, tuple) else (out,)
    where = kwargs.get("where", True)
    if len(outs) != 1 or not isinstance(outs[0], Tracer) or not (
            where is True or where is None):
        raise InPlaceError(f"numpy.{ufunc.__name__}(..., out=...)"
                           + (" into a plain NumPy array" if len(outs) == 1
                              and not isinstance(outs[0], Tracer) else ""))
    kwargs.pop("where", None)
    return inplace_op(outs[0], ufunc.__name__, ufunc(*inputs, **kwargs))


def ufunc_at(ufunc: Any, inputs: Any) -> None:
    """``np.add.at(x, idx, v)`` / ``np.multiply.at`` with a traced ``x``: ``x`` rebound to
    ``dualrev.at(x)[idx].add(v)`` (``.multiply``). A plain ``x`` raises InPlaceError."""
    method = {np.add: "add", np.multiply: "multiply"}.get(ufunc)
    x = inputs[0]
    if method is None or len(inputs) != 3 or not isinstance(x, Tracer):
        raise InPlaceError(f"numpy.{ufunc.__name__}.at"
                           + ("" if isinstance(x, Tracer) else " into a plain NumPy array"))
    refuse_scalar_write(x, f"numpy.{ufunc.__name__}.at(x, ...)")
    assign(x, inplace_cast(getattr(at(x)[inputs[1]], method)(inputs[2]), x),
           f"numpy.{ufunc.__name__}.at(x, ...)")


def inplace_cast(new: Any, x: Any) -> Any:
    """``new`` in ``x``'s dtype (NumPy writes into ``x`` keep its dtype)."""
    xd = dtype_of(x)
    return new if dtype_of(new) == xd else METHODS["astype"](new, xd)


def fill(x: Any, value: Any) -> None:
    """``x.fill(value)``: every element of ``x`` set to the scalar ``value``."""
    refuse_scalar_write(x, "x.fill(v)")
    if shape_of(value) != ():
        raise ValueError("fill: the value must be a scalar")
    assign(x, functional_set(x, (Ellipsis,), value), "x.fill(...)")


def sort(x: Any, axis: int = -1, kind: Any = None, order: Any = None, **kw: Any) -> None:
    """``x.sort()``: ``x`` rebound to ``np.sort(x)``."""
    if order is not None or kw:
        raise InPlaceError("x.sort(order=...)")
    assign(x, np.sort(x, axis=axis, kind=kind), "x.sort()")


METHODS.update(setitem=setitem, fill=fill, sort=sort, inplace_op=inplace_op,
               ufunc_out=ufunc_out, ufunc_at=ufunc_at)
