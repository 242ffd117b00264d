"""In-place writes into traced arrays: ``u[idx] = v``, ``x += y``, ``x.fill(v)``,
``x.sort()``.

dualrev owns the traced object, so a write is recorded as a functional update and the
object is *rebound*: after ``u[idx] = v`` the same Python object ``u`` stands for
``dualrev.at(u)[idx].set(v)`` (its primal, and its trace identity: tape entry, tangent
or batch). Other names bound to the object see the write, as with NumPy arrays.

Views. NumPy's basic indexing (and reshape, transpose, ...) returns a view sharing the
base's memory; dualrev's traced values are separate objects. So a value made by a view
operation keeps its base (``_base``: the base and the basic index, or the operation's
name) and the base keeps weak references to its views (``_views``):

- a write *into a view* made by basic indexing is a write into its base
  (``u[1:][0] = 5`` writes ``u[1]``), so the base and the view both show it;
- a write into a view made by another operation (reshape, transpose, ...) raises
  ``InPlaceError`` naming the rewrite (write into the base);
- a write into a base (or through one of its views) makes every *other* view of it
  taken before the write stale: any later use of one raises ``StaleViewError`` (NumPy
  would show the write there, and dualrev never gives a silently different value).

Values that are not views (arithmetic results, copies, integer-indexed scalars as in
NumPy) keep no link: their reads cost nothing extra.
"""

from __future__ import annotations

import warnings
import weakref
from typing import Any

import numpy as np

from .errors import EscapedTracerError, InPlaceError, StaleViewError
from .primitive import (
    FUNCTION_HANDLERS,
    METHODS,
    Tracer,
    bind,
    concrete,
    dtype_of,
    shape_of,
)

_ref = weakref.ref
_INTS = (int, np.integer)


# ------------------------------------------------------------------ views
def note_view(base: Any, view: Any, key: Any) -> None:
    """Record that ``view`` was made from ``base`` by a view operation: ``key`` is the
    basic index (a tuple) for ``base[key]``, else the operation's name (a str)."""
    if view is base or not isinstance(view, Tracer):
        return
    view._base = (base, key)
    try:
        views = base._views
    except AttributeError:
        base._views = [_ref(view)]
        return
    views.append(_ref(view))
    n = len(views)
    if n >= 64 and not n & (n - 1):  # drop the dead ones now and then (amortised)
        views[:] = [r for r in views if r() is not None]


def is_scalar_index(key: tuple[Any, ...], ndim: int) -> bool:
    """Whether NumPy's ``x[key]`` is a scalar (a copy, not a view): integers only, one
    per axis."""
    if len(key) != ndim:
        return False
    for k in key:
        if not isinstance(k, _INTS):
            return False
    return True


def viewing(func: Any, name: str) -> Any:
    """The handler ``func`` of a NumPy function returning a view of its first argument,
    with its result(s) recorded as views (see the module docstring)."""

    def handler(a: Any, *args: Any, **kwargs: Any) -> Any:
        out = func(a, *args, **kwargs)
        if isinstance(a, Tracer):
            if isinstance(out, (list, tuple)):
                for o in out:
                    note_view(a, o, name)
            else:
                note_view(a, out, name)
        return out

    handler.__wrapped__ = func  # type: ignore[attr-defined]
    handler.__name__ = getattr(func, "__name__", name)
    return handler


# NumPy functions whose result is a view of their first argument (some only when the
# memory layout allows: dualrev counts them as views always, which can only refuse
# more, never compute differently)
VIEW_FUNCTIONS = {
    np.reshape: "reshape", np.ravel: "ravel", np.squeeze: "squeeze",
    np.expand_dims: "expand_dims", np.transpose: "transpose", np.swapaxes: "swapaxes",
    np.moveaxis: "moveaxis", np.broadcast_to: "broadcast_to", np.flip: "flip",
    np.fliplr: "fliplr", np.flipud: "flipud", np.diagonal: "diagonal", np.real: "real",
    np.imag: "imag", np.split: "split", np.array_split: "array_split",
    np.atleast_1d: "atleast_1d", np.atleast_2d: "atleast_2d", np.atleast_3d: "atleast_3d",
}
for _name in ("permute_dims", "matrix_transpose", "hsplit", "vsplit", "dsplit", "unstack",
              "rot90"):
    if hasattr(np, _name):
        VIEW_FUNCTIONS[getattr(np, _name)] = _name


def install_view_handlers() -> None:
    """Wrap the catalogue's handlers of the view functions (called once it is loaded)."""
    for f, name in VIEW_FUNCTIONS.items():
        h = FUNCTION_HANDLERS.get(f)
        if h is not None and not hasattr(h, "__wrapped__"):
            FUNCTION_HANDLERS[f] = viewing(h, name)


class _Stale:
    """What a stale view's primal becomes: any use of it raises ``StaleViewError``."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise StaleViewError(self.what)

    def __getattr__(self, attr: str) -> Any:
        self._fail()

    def __repr__(self) -> str:
        return f"<stale view: {self.what}>"

    __hash__ = object.__hash__
    __array__ = __array_ufunc__ = __array_function__ = _fail
    __bool__ = __len__ = __iter__ = __contains__ = __getitem__ = _fail
    __float__ = __int__ = __index__ = __complex__ = _fail
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _fail
    __neg__ = __pos__ = __abs__ = __invert__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _fail
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _fail
    __pow__ = __rpow__ = __matmul__ = __rmatmul__ = _fail


def _describe(key: Any) -> str:
    if isinstance(key, str):
        return f"x.{key}(...)" if key not in ("real", "imag") else f"x.{key}"
    return f"x[{_key_text(key)}]"


def _key_text(key: Any) -> str:
    def one(k: Any) -> str:
        if isinstance(k, slice):
            return ":".join("" if v is None else str(v)
                            for v in (k.start, k.stop, k.step)[:3 if k.step else 2])
        if k is Ellipsis:
            return "..."
        if k is None:
            return "None"
        if isinstance(k, np.ndarray):
            return "array"
        return str(k)
    if not isinstance(key, tuple):
        key = (key,)
    return ", ".join(one(k) for k in key) if key else "()"


def _poison_views(obj: Any, keep: Any, write: str) -> None:
    """Make every live view of ``obj`` (and views of those) but ``keep`` stale."""
    try:
        views = obj._views
    except AttributeError:
        return
    stack = [views]
    obj._views = [_ref(keep)] if keep is not None else []
    while stack:
        for r in stack.pop():
            v = r()
            if v is None or v is keep:
                continue
            what = _describe(v._base[1])
            v.primal = _Stale(f"a view {what} taken before {write} was written")
            del v._base
            try:
                stack.append(v._views)
                del v._views
            except AttributeError:
                pass


# ------------------------------------------------------------------ rebinding
def _rebind(obj: Any, new: Any) -> None:
    """Make the object ``obj`` stand for the value ``new`` (the write's result)."""
    if not isinstance(new, Tracer):
        new = constant(new, obj)
    t = type(new)
    if type(obj) is not t:
        obj.__class__ = t  # all traced types share one layout (see primitive.Tracer)
    obj.primal = new.primal
    obj._trace = new._trace
    obj._level = new._level
    for name in ("tangent", "_index"):
        try:
            setattr(obj, name, getattr(new, name))
        except AttributeError:
            try:
                delattr(obj, name)
            except AttributeError:
                pass


def assign(obj: Any, new: Any, write: str) -> None:
    """Rebind ``obj`` to ``new`` in place; if ``obj`` is a view made by basic indexing,
    the write goes into its base (and on up), and every other view of a written object
    becomes stale. ``write`` names the write for error messages (``x[1:3]``)."""
    if isinstance(obj.primal, _Stale):
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
                f"a write into {_describe(key)} (a view of x, which dualrev cannot write "
                "through)", rewrite="write into x itself instead: reshape/transpose the "
                "value you write, or index x directly (x[...] = v)")
        if isinstance(base.primal, _Stale):
            base.primal._fail()
        val = functional_set(base, key, val)
        chain.append((base, val))
        cur = base
    # from the root down: each written base keeps its one view on the chain (which is
    # rebound to the matching value next); every other view of it goes stale
    for i in range(len(chain) - 1, -1, -1):
        o, v = chain[i]
        _poison_views(o, chain[i - 1][0] if i else None, write)
        _rebind(o, v)


def functional_set(x: Any, key: tuple[Any, ...], v: Any) -> Any:
    """``x`` with ``v`` written at the canonical index ``key``, in ``x``'s dtype (as
    NumPy's assignment casts): the value ``x[key] = v`` leaves in ``x``."""
    from .catalogue.indexing import is_basic, scatter_p

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
        from .at import at
        out = at(x)[key].set(v)
    if dtype_of(out) != xd:
        out = METHODS["astype"](out, xd)
    return out


# ------------------------------------------------------------------ constants
def constant(value: Any, like: Any) -> Any:
    """The plain (or only batched) ``value`` as a value of ``like``'s trace with no
    derivative: a constant a write can rebind ``like`` to, and the traced buffer
    ``np.zeros_like`` of a traced value gives."""
    from .batching import Batched, BatchTrace, FinishedBatchTrace
    from .forward import Dual, FinishedForwardTrace, ForwardTrace
    from .reverse import FinishedTape, Tape, Traced

    trace = like._trace
    if isinstance(trace, (FinishedTape, FinishedForwardTrace, FinishedBatchTrace)):
        raise EscapedTracerError(trace.what, "an in-place write")
    if isinstance(value, Tracer) and value._level >= like._level:
        return value
    if isinstance(trace, Tape):
        trace.nodes.append((None, (), None, value, ()))
        return Traced(value, trace, len(trace.nodes) - 1)
    if isinstance(trace, ForwardTrace):
        dt = dtype_of(value)
        return Dual(value, np.zeros(shape_of(value), dt if dt.kind in "fc" else float),
                    trace)
    if isinstance(trace, BatchTrace):
        return Batched(np.array(np.broadcast_to(concrete(value) if not isinstance(
            value, Tracer) else value, (trace.size,) + tuple(shape_of(value)))), trace)
    raise InPlaceError("a write into a value of an unknown trace")


def constant_like(a: Any, make: Any, own: np.ndarray) -> Any:
    """``make(shape, dtype)`` (np.zeros, np.ones) of the shape and dtype of the plain
    ``own`` (one element's, under vmap: the batch axes of the traced ``a`` go in front)
    as a constant of ``a``'s trace: a buffer writes into which are recorded
    (``np.zeros_like(x)``)."""
    from .batching import batch_traces, rebatch

    traces = batch_traces(a)
    if traces:
        lead = np.shape(concrete(a))[:len(traces)]
        value = rebatch(make(lead + own.shape, own.dtype), a)
    else:
        value = make(own.shape, own.dtype)
    if a._bdepth:
        return value
    return constant(value, a)


# ------------------------------------------------------------------ the entry points
def setitem(x: Any, key: Any, value: Any) -> None:
    """``x[key] = value`` on a traced ``x``."""
    from .catalogue.indexing import canonical_index

    key = canonical_index(key)
    base = getattr(value, "_base", None) if isinstance(value, Tracer) else None
    if base is not None and base[0] is x and base[1] == key:
        # x[key] op= v: Python's getitem gave a view, whose in-place operator already
        # wrote through it; this store writes the same values again
        return
    assign(x, functional_set(x, key, value), f"x[{_key_text(key)}]")


_INPLACE = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide,
            "//": np.floor_divide, "%": np.remainder, "**": np.power, "@": np.matmul,
            "&": np.bitwise_and, "|": np.bitwise_or, "^": np.bitwise_xor,
            "<<": np.left_shift, ">>": np.right_shift}


def inplace_op(x: Any, op: str, new: Any) -> Any:
    """``x op= y`` given ``new = x op y``: ``x`` rebound to ``new`` in its own dtype and
    shape, refused where NumPy refuses (a result NumPy cannot cast back, or of another
    shape)."""
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
    from .at import at

    method = {np.add: "add", np.multiply: "multiply"}.get(ufunc)
    x = inputs[0]
    if method is None or len(inputs) != 3 or not isinstance(x, Tracer):
        raise InPlaceError(f"numpy.{ufunc.__name__}.at"
                           + ("" if isinstance(x, Tracer) else " into a plain NumPy array"))
    assign(x, inplace_cast(getattr(at(x)[inputs[1]], method)(inputs[2]), x),
           f"numpy.{ufunc.__name__}.at(x, ...)")


def inplace_cast(new: Any, x: Any) -> Any:
    """``new`` in ``x``'s dtype (NumPy writes into ``x`` keep its dtype)."""
    xd = dtype_of(x)
    return new if dtype_of(new) == xd else METHODS["astype"](new, xd)


def fill(x: Any, value: Any) -> None:
    """``x.fill(value)``: every element of ``x`` set to the scalar ``value``."""
    if np.ndim(concrete(value)) if not isinstance(value, Tracer) else shape_of(value):
        raise ValueError("fill: the value must be a scalar")
    assign(x, functional_set(x, (Ellipsis,), value), "x.fill(...)")


def sort(x: Any, axis: int = -1, kind: Any = None, order: Any = None, **kw: Any) -> None:
    """``x.sort()``: ``x`` rebound to ``np.sort(x)``."""
    if order is not None or kw:
        raise InPlaceError("x.sort(order=...)")
    assign(x, np.sort(x, axis=axis, kind=kind), "x.sort()")


def clone(x: Any) -> Any:
    """Another object standing for the same traced value (``x.copy()``, ``+x``): a
    later write into either is not seen by the other, as with NumPy's copies."""
    c = object.__new__(type(x))
    c.primal = x.primal
    c._trace = x._trace
    c._level = x._level
    for name in ("tangent", "_index"):
        try:
            setattr(c, name, getattr(x, name))
        except AttributeError:
            pass
    return c


try:
    from sys import _getframe
except ImportError:  # pragma: no cover - interpreters without frame access
    _getframe = None

import dis as _dis  # noqa: E402

_STORES = {_dis.opmap[n] for n in ("STORE_SUBSCR", "STORE_SLICE") if n in _dis.opmap}


def refuse_plain_store() -> None:
    """Raise ``PlainBufferError`` when the conversion of a traced value under way was
    asked for by ``out[i] = x`` into a plain NumPy array (the calling line's current
    instruction is a subscript store: NumPy converts the value to store it)."""
    if _getframe is None:
        return
    try:
        frame = _getframe(2)
        op = frame.f_code.co_code[frame.f_lasti]
    except (ValueError, IndexError, AttributeError):
        return
    if op in _STORES:
        from .errors import PlainBufferError
        raise PlainBufferError("out[i] = x")
