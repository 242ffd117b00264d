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

import sys
import warnings
from sys import getrefcount
from typing import Any

import numpy as np

from . import config
from .cast import astype
from .diagnose import explain
from .errors import BUFFER_ADVICE, BatchedValueError, InPlaceError, NoDerivativeRule
from .indexing import (
    _positions,
    _reshape,
    batched_positions,
    canonical_index,
    dependent_index,
    getitem,
    is_basic,
    put_along,
    scatter_p,
    stack_index_lists,
    update_p,
)
from .inplace import (
    Stale,
    clone,
    describe,
    is_scalar_like,
    key_text,
    note_view,
    poison_views,
    rebind,
    refuse_scalar_write,
)
from .levels import on_plain_values, without_derivatives
from .primitive import Tracer, bind, dtype_of, register_function, shape_of, strip

# as in reverse.py: from 3.14 a reference count may not count the interpreter's stack
_ELIDE = sys.implementation.name == "cpython" and sys.version_info < (3, 14)
# whether a write may go into a private value (see _private): where reference counts
# prove privacy and the shortcuts are on
_WRITE_INTO = [_ELIDE]


@config.on_shortcuts
def _choose_write_into(on: bool) -> None:
    _WRITE_INTO[0] = _ELIDE and on


class _Update:
    __slots__ = ("x", "idx", "raw", "source")

    def __init__(self, x: Any, idx: Any) -> None:
        self.x = x
        self.raw = idx
        # under a structural sparsity detection, an integer index computed from the input
        # (np.argsort(x)) may select other positions for another input: its value here
        # computes the result, and the updates make every written element depend on all
        # of v (put_along with a dependent index: dualrev/pattern_rules.along_axis)
        self.source, idx = dependent_index(idx)
        self.idx = canonical_index(idx)

    def _dependent(self, pos: np.ndarray) -> Any:
        return self.source.derived(pos)

    def _flat(self) -> tuple[np.ndarray, tuple[int, ...]]:
        shape = shape_of(self.x)
        return np.ravel(_positions(shape, self.idx)), shape

    def get(self) -> Any:
        """``x[idx]``."""
        return getitem(self.x, self.idx if self.source is None else self.raw)

    def add(self, v: Any) -> Any:
        """``x`` with ``v`` added at ``idx``; repeated indices accumulate."""
        pos, shape = self._flat()
        vals = np.ravel(np.broadcast_to(v, shape_of(_positions(shape, self.idx)))) + 0.0
        size = int(np.prod(shape))
        if self.source is not None:
            added = bind(put_along, (vals, self._dependent(pos)), {"axis": 0, "shape": (size,)})
        else:
            added = bind(scatter_p, (vals,), {"idx": (pos,), "nb": 0, "shape": (size,)})
        return self.x + np.reshape(added, shape)

    def multiply(self, v: Any) -> Any:
        """``x`` multiplied by ``v`` at ``idx`` (repeats multiply repeatedly)."""
        pos, shape = self._flat()
        if self.source is not None:
            self.source.freeze()  # the positions at the given point, noted
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
        vals = np.ravel(np.broadcast_to(v, shape_of(_positions(shape, self.idx)))) + 0.0
        _, first_from_end = np.unique(pos[::-1], return_index=True)
        keep = pos.size - 1 - first_from_end  # the last occurrence of each position
        kept = getitem(vals, (keep,))
        if self.source is not None:
            size = int(np.prod(shape))
            placed = bind(put_along, (kept, self._dependent(pos[keep])),
                          {"axis": 0, "shape": (size,)})
            hit = np.zeros(size, dtype=bool)
            hit[pos] = True
            out = np.where(self._dependent(hit), placed, _ravel(self.x))
            return np.reshape(out, shape)
        out = bind(update_p, (kept, _ravel(self.x)), {"idx": (pos[keep],), "nb": 0})
        return np.reshape(out, shape)


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
        followers = poison_views(o, chain[i - 1][0] if i else None, write)
        rebind(o, v)
        for f in followers:  # views of all of o show the write, as NumPy's do
            rebind(f, v)


def _private(x: Any) -> bool:
    """Whether the traced ``x``'s value is an array only ``x`` holds (CPython's reference
    count: the slot and the call's argument), owning its memory, so that a write may go
    into it: no tape entry, view, copy or caller sees it (a buffer written row by row
    then costs a row per write, not a copy of the buffer)."""
    return (_WRITE_INTO[0] and isinstance(x, Tracer)
            and type(x.primal) is np.ndarray
            and x.primal.base is None and x.primal.flags.writeable
            and getrefcount(x.primal) <= 2
            # a view's write goes on into its base, which may refuse it (a view by
            # name): the value must not have been written by then
            and getattr(x, "_base", None) is None)


def _private_tangent(x: Any) -> bool:
    """Whether the dual number ``x``'s tangent is an array only ``x`` holds (as
    ``_private`` for its value), so that forward mode writes the tangent in place too."""
    return (_WRITE_INTO[0] and isinstance(x, Tracer)
            and type(getattr(x, "tangent", None)) is np.ndarray  # a Dual's
            and x.tangent.base is None and x.tangent.flags.writeable
            and getrefcount(x.tangent) <= 2
            and getattr(x, "_base", None) is None)  # (as _private)


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
    if any(isinstance(k, Tracer) for k in key):
        if all(not isinstance(k, Tracer) or hasattr(type(k), "derived") for k in key) and (
                dependent_index(key)[0] is not None):
            # positions computed from the input of a sparsity detection (not a batch):
            # the functional update writes them sparsely and widens the pattern
            out = at(x)[key].set(v)
        else:
            out = set_batched(x, key, v)
    elif is_basic(key):
        target = np.zeros(shape, dtype=bool)[key].shape
        if shape_of(v) != target:
            v = np.broadcast_to(v, target)
        out = bind(update_p, (v, x), {"idx": key, "nb": 0, "inplace": _private(x),
                                      "tangent_inplace": _private_tangent(x)})
    else:
        out = at(x)[key].set(v)
    if dtype_of(out) != xd:
        out = astype(out, xd)
    return out


# ------------------------------------------------------------------ the entry points
def setitem(x: Any, key: Any, value: Any) -> None:
    """``x[key] = value`` on a traced ``x``."""
    refuse_scalar_write(x, "x[...] = v")
    tup = stack_index_lists(key if isinstance(key, tuple) else (key,))
    if any(isinstance(k, Tracer) for k in tup):
        key = batched_index(tup)
    else:
        key = canonical_index(key)
    value = _drop_leading_ones(x, tup, key, value)
    base = getattr(value, "_base", None) if isinstance(value, Tracer) else None
    if base is not None and base[0] is x and same_key(base[1], key):
        # x[key] op= v: Python's getitem gave a view, whose in-place operator already
        # wrote through it; this store writes the same values again
        return
    assign(x, functional_set(x, key, value), f"x[{key_text(key)}]")


def _drop_leading_ones(x: Any, tup: tuple[Any, ...], key: Any, value: Any) -> Any:
    """``value`` without the leading axes of length 1 it has beyond the written part of
    ``x[key]``: NumPy's ``x[key] = v`` drops them (``x[::2] = np.ones((1, 1))``), except
    under a boolean mask (NumPy raises there, as the functional update does)."""
    vs = shape_of(value)
    if not vs or vs[0] != 1 or any(isinstance(k, Tracer) for k in key) or any(
            np.asarray(k).dtype == bool for k in tup
            if not isinstance(k, (slice, type(None), type(Ellipsis), int, np.integer))):
        return value
    nd = len(np.zeros(shape_of(x), dtype=bool)[key].shape)
    k = 0
    while len(vs) - k > nd and vs[k] == 1:
        k += 1
    return _reshape_nolink(value, vs[k:]) if k else value


def same_key(a: Any, b: Any) -> bool:
    """Whether two canonical indices are the same basic index (an index array is never
    taken for the same: its views are copies, and ``==`` on it would be elementwise)."""
    if isinstance(a, str) or isinstance(b, str) or len(a) != len(b):
        return False
    for p, q in zip(a, b, strict=True):
        if isinstance(p, Tracer):  # a per-element index under vmap: the same object
            if p is not q:
                return False
        elif type(p) is not type(q) or isinstance(p, np.ndarray) or p != q:
            return False
    return True


def batched_index(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """An index with parts that differ per element under ``vmap`` (``np.argmax(x)``,
    ``x > 0.3``): those parts kept, the rest made canonical. A part carrying a
    derivative is refused, as by ``canonical_index``."""
    plain = []
    for k in key:
        if isinstance(k, Tracer):
            if not isinstance(without_derivatives(k), Tracer):
                canonical_index((k,))  # raises: a traced value used as an index
            plain.append(0)
        else:
            plain.append(k)
    canon = canonical_index(tuple(plain))
    return tuple(k if isinstance(k, Tracer) else c for k, c in zip(key, canon, strict=True))


def set_batched(x: Any, key: tuple[Any, ...], v: Any) -> Any:
    """``x`` with ``v`` written at ``key``, an index with parts that differ per element
    under ``vmap``: a batched boolean mask (``x[m] = v`` is ``np.where(m, v, x)`` for a
    ``v`` of one row) or batched integers (each element's positions, written by a 0/1
    matrix that keeps the last write to each position, as NumPy does)."""
    xs = shape_of(x)
    parts = [k for k, i in enumerate(key) if isinstance(i, Tracer)]
    if any(dtype_of(key[k]).kind == "b" for k in parts):
        m = key[0]
        ms = shape_of(m)
        rest = xs[len(ms):]
        vs = shape_of(v)
        one_row = len(key) == 1 and dtype_of(m).kind == "b" and xs[:len(ms)] == ms
        if one_row:
            try:
                one_row = np.broadcast_shapes(vs, (1,) + rest) == (1,) + rest
            except ValueError:
                one_row = False
        if not one_row and not any(without_derivatives(key[k])._bdepth for k in parts):
            # a dualrev.replay recording's staged mask, not a batch: the store selects
            # as many rows as the mask holds, which the recording then relies on (its
            # value frozen, an "equal" guard: another mask records anew)
            return functional_set(x, canonical_index(tuple(
                strip(k) if isinstance(k, Tracer) else k for k in key)), v)
        if not (len(key) == 1 and dtype_of(m).kind == "b" and xs[:len(ms)] == ms):
            raise BatchedValueError(
                "a store x[..., mask, ...] = v with a batched boolean mask among other "
                "indices (write np.where(mask, v, x) with the mask broadcast to x)")
        try:
            ok = np.broadcast_shapes(vs, (1,) + rest) == (1,) + rest
        except ValueError:
            ok = False
        if not ok:
            raise BatchedValueError(
                f"a store x[mask] = v with a batched mask and v of shape {vs}: the number "
                "of selected rows differs per element, so v must be one row (shape "
                f"{rest}) or a scalar; write np.where(mask, v, x)")
        row = _reshape_nolink(np.broadcast_to(v, (1,) + rest), rest) if rest else (
            _reshape_nolink(v, ()) if vs else v)
        return np.where(_reshape_nolink(m, ms + (1,) * len(rest)), row, x)
    size = int(np.prod(xs))

    pos = batched_positions(xs, key, parts)
    n = int(np.prod(shape_of(pos)))
    vals = _reshape_nolink(np.broadcast_to(v, shape_of(pos)), (n,))

    def last_writes(p: np.ndarray) -> np.ndarray:
        w = np.zeros((size, n))
        p = np.ravel(p)
        _, first_from_end = np.unique(p[::-1], return_index=True)
        keep = n - 1 - first_from_end
        w[p[keep], keep] = 1.0
        return w

    w = on_plain_values(last_writes, [pos], name="an index")
    hit = np.any(w, axis=1)
    placed = w @ vals
    return _reshape_nolink(np.where(hit, placed, _ravel(x)), xs)


def _ravel(a: Any) -> Any:
    """``np.ravel`` of a traced value, not recorded as a view."""
    return _reshape(a, (-1,))


def _reshape_nolink(a: Any, shape: tuple[int, ...]) -> Any:
    """``np.reshape`` of an intermediate, not recorded as a view."""
    return _reshape(a, shape) if isinstance(a, Tracer) else np.reshape(a, shape)


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
        new = astype(new, xd)
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
        plain = len(outs) == 1 and not isinstance(outs[0], Tracer)
        # u[1:-1] += t into a plain array is this call too: the user's statement, named
        why = explain("array") if plain else None
        if why is not None and getattr(why, "store", False):
            raise InPlaceError("", detail=str(why))
        raise InPlaceError(f"numpy.{ufunc.__name__}(..., out=...)"
                           + (" into a plain NumPy array" if plain else ""),
                           rewrite=("write x = x + y instead of the out= argument, or make the "
                                    "array a buffer dualrev traces. "
                                    + BUFFER_ADVICE.rstrip(".")) if plain else None)
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
    return new if dtype_of(new) == xd else astype(new, xd)


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


def partition(x: Any, kth: Any, axis: int = -1, kind: str = "introselect",
              order: Any = None) -> None:
    """``x.partition(kth)``: ``x`` rebound to ``np.partition(x, kth)`` (the arrangement
    NumPy's makes)."""
    assign(x, np.partition(x, kth, axis=axis, kind=kind, order=order), "x.partition(...)")


def _plain_ravel(x: Any) -> Any:
    """``x`` flattened, not linked to ``x`` as a view (an intermediate of a write)."""
    return _ravel(x)


def _cycled(v: Any, n: int) -> Any:
    """``v`` flattened and repeated (or cut) to ``n`` values, as ``put`` and ``x.flat[...]
    = v`` take it."""
    vf = np.ravel(v) if isinstance(v, Tracer) else np.ravel(np.asarray(v))
    m = shape_of(vf)[0]
    if m == n:
        return vf
    if m == 0:
        if n == 0:
            return vf
        raise ValueError("cannot write an empty sequence into a non-empty selection")
    return getitem(vf, (np.arange(n) % m,))


def _flat_write(x: Any, pos: np.ndarray, v: Any, write: str) -> None:
    """Write ``v`` (cycled) at the flat positions ``pos`` of ``x``, in place."""
    pos = np.ravel(pos)
    flat = at(_plain_ravel(x))[(pos,)].set(_cycled(v, pos.size))
    assign(x, inplace_cast(np.reshape(flat, shape_of(x)), x), write)


def put(x: Any, ind: Any, v: Any, mode: str = "raise") -> None:
    """``x.put(ind, v, mode)`` / ``np.put(x, ind, v, mode)``: ``v`` (cycled) written at the
    flat positions ``ind``, in place."""
    if not isinstance(x, Tracer):
        raise InPlaceError("numpy.put into a plain NumPy array",
                           rewrite="build the array with dualrev.at(x.ravel())[ind].set(v) "
                           "instead")
    size = int(np.prod(shape_of(x)))
    ind = np.ravel(np.asarray(strip(ind))).astype(np.intp)
    if mode == "wrap":
        ind = ind % size if size else ind
    elif mode == "clip":
        ind = np.clip(ind, 0, size - 1)
    elif mode != "raise":
        raise ValueError(f"clipmode must be one of 'clip', 'raise', or 'wrap' (got {mode!r})")
    elif ind.size and (ind.max() >= size or ind.min() < -size):
        bad = ind[(ind >= size) | (ind < -size)][0]
        raise IndexError(f"index {bad} is out of bounds for axis 0 with size {size}")
    _flat_write(x, ind, v, "x.put(...)")


class FlatIter:
    """``x.flat`` of a traced ``x``: reading gives copies (``x.flat[1:3]``, iteration),
    writing (``x.flat[k] = v``, values cycled as in NumPy) writes into ``x``."""

    __slots__ = ("base",)

    def __init__(self, x: Any) -> None:
        self.base = x

    def __len__(self) -> int:
        return int(np.prod(shape_of(self.base)))

    def __iter__(self) -> Any:
        flat = _plain_ravel(self.base)
        for i in range(len(self)):
            yield getitem(flat, (i,))

    def __getitem__(self, k: Any) -> Any:
        out = getitem(_plain_ravel(self.base), k)
        # a copy, as NumPy's flatiter gives: no link back to x
        return clone(out) if isinstance(out, Tracer) else out

    def __setitem__(self, k: Any, v: Any) -> None:
        n = len(self)
        pos = np.arange(n, dtype=np.intp)[canonical_index(k)]
        _flat_write(self.base, pos, v, f"x.flat[{key_text(canonical_index(k))}]")

    def copy(self) -> Any:
        """``x.flatten()``."""
        return self.base.flatten()


def set_flat(x: Any, v: Any) -> None:
    """``x.flat = v``: every element of ``x``, ``v`` cycled."""
    _flat_write(x, np.arange(int(np.prod(shape_of(x))), dtype=np.intp), v, "x.flat = v")


def resize(x: Any, *args: Any, **kwargs: Any) -> None:
    """``x.resize(...)``: refused (it changes the array's shape in place)."""
    raise InPlaceError(
        "x.resize(...) (it changes the shape of the array in place, which NumPy itself "
        "refuses for an array that other names refer to)",
        rewrite="build a new array: np.resize(x, shape) repeats the values, "
        "np.pad(x.ravel(), (0, n - x.size)).reshape(shape) pads with zeros as x.resize "
        "does")


def view(x: Any, dtype: Any = None, type: Any = None) -> Any:
    """``x.view()``: a new object that is a view of all of ``x`` (writes through either
    are seen by the other); a view as another dtype or type is refused."""
    if (dtype is not None and np.dtype(dtype) != dtype_of(x)) or (
            type is not None and type is not np.ndarray):
        raise NoDerivativeRule("ndarray.view(dtype)", "Reinterpreting the bytes of a "
                               "traced array as another dtype has no derivative; "
                               "x.astype(dtype) converts the values.")
    out = clone(x)
    note_view(x, out, (Ellipsis,))
    return out



def _np_put(a: Any, ind: Any, v: Any, mode: str = "raise") -> None:
    put(a, ind, v, mode)


register_function(np.put, _np_put)
