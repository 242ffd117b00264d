"""In-place writes into traced arrays, the machinery under them: views and their
bases, rebinding an object to a written value, constants of a trace (the buffers of
``np.zeros_like``). The writes themselves (``u[idx] = v``, ``x += y``, ``x.fill(v)``,
``x.sort()``, ``out=x``) are recorded in dualrev/at.py, next to the functional updates.

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

import weakref
from typing import Any

import numpy as np

from .batching import Batched, BatchTrace, FinishedBatchTrace, batch_traces, rebatch
from .errors import EscapedTracerError, InPlaceError, StaleViewError
from .forward import Dual, FinishedForwardTrace, ForwardTrace
from .primitive import (
    FUNCTION_HANDLERS,
    METHODS,
    Tracer,
    concrete,
    dtype_of,
    shape_of,
)
from .reverse import CONSTANT, FinishedTape, Tape, Traced
from .staging import FinishedStagingTrace, Staged, StagingTrace

_ref = weakref.ref
_INTS = (int, np.integer)


# ------------------------------------------------------------------ views
def note_view(base: Any, view: Any, key: Any) -> None:
    """Record that ``view`` was made from ``base`` by a view operation: ``key`` is the
    basic index (a tuple) for ``base[key]``, else the operation's name (a str)."""
    if view is base or not isinstance(view, Tracer):
        return
    if not isinstance(key, str) and is_scalar_like(base):
        # NumPy's s[...] / s[None] of a scalar is a new array: a write into it does not
        # reach the (immutable) scalar. (Views by name stay linked: their writes are
        # refused, as NumPy refuses those into np.broadcast_to of a scalar.)
        if not shape_of(view):
            view._array0d = True
        return
    old = getattr(view, "_base", None)
    if old is not None and old[0] is base:
        # a view function built from another (matrix_transpose from swapaxes): one
        # link, named by the outer function
        view._base = (base, key)
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


def is_scalar_like(x: Any) -> bool:
    """Whether the traced ``x`` stands for a NumPy scalar, which is immutable: it is 0-d
    and neither a view nor a 0-d array (``np.zeros_like`` of a 0-d value, ``np.copy``).
    NumPy gives scalars for integer indexing to one element, full reductions and
    arithmetic on 0-d values, so ``s += v`` there binds the name ``s`` to a new value and
    every other name keeps the old one, and ``s[...] = v`` raises."""
    if shape_of(x):
        return False
    try:
        x._base  # noqa: B018 -- a view of an array: its writes reach the array
        return False
    except AttributeError:
        pass
    try:
        return not x._array0d
    except AttributeError:
        return True


def refuse_scalar_write(x: Any, write: str) -> None:
    """Raise where ``write`` (``x[...] = v``, ``x.fill(v)``, ``out=x``) would write into
    a traced NumPy scalar, which NumPy refuses (a scalar has no memory to write)."""
    if is_scalar_like(x):
        raise InPlaceError(
            f"{write} into a 0-d value that NumPy gives as a scalar (an element x[i, j], a "
            "full reduction, arithmetic on 0-d values), which NumPy cannot write into",
            rewrite="bind the name to the new value (s = v, s = s + v), or make a 0-d "
            "array first (a = np.zeros_like(s); a[...] = s)")


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

    same = name in SAME_OBJECT

    def handler(a: Any, *args: Any, **kwargs: Any) -> Any:
        out = func(a, *args, **kwargs)
        if isinstance(a, Tracer):
            if isinstance(out, (list, tuple)):
                for o in out:
                    note_view(a, o, name)
            elif out is a:
                if not same:
                    # NumPy returns a new view object (np.reshape to the same shape, .T
                    # of a vector): a view of the whole array, written through as x[...]
                    # (np.broadcast_to's is read-only in NumPy: refused, as other views;
                    # so is a ravel/reshape NumPy answers with a copy, of a value whose
                    # memory is not contiguous: x[::2].ravel() is not written through)
                    out = clone(a)
                    if not shape_of(out) and is_scalar_like(a):
                        # of a NumPy scalar, np.transpose / np.squeeze / np.reshape(s,
                        # ()) give another scalar (immutable, as s): no view, no 0-d array
                        return out
                    refused = name == "broadcast_to" or (
                        name in _COPY_UNLESS_CONTIGUOUS and not _contiguous(a))
                    note_view(a, out, name if refused else (Ellipsis,))
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
        VIEW_FUNCTIONS.setdefault(getattr(np, _name), _name)  # permute_dims is transpose


# View functions that give a copy where the array's memory is not contiguous
_COPY_UNLESS_CONTIGUOUS = {"ravel", "reshape"}


def _contiguous(a: Any) -> bool:
    """Whether the memory under the traced ``a`` is C-contiguous, as NumPy's view
    functions need to return a view (a plain value of any other kind counts as not)."""
    p = a.primal
    while isinstance(p, Tracer):
        p = p.primal
    return type(p) is np.ndarray and p.flags.c_contiguous


# View functions that NumPy answers with the array itself when there is nothing to do
# (np.squeeze without unit axes, np.atleast_1d of a vector, np.real of a real array)
SAME_OBJECT = {"squeeze", "atleast_1d", "atleast_2d", "atleast_3d", "real"}

# view keys that are ndarray methods (the others are NumPy functions) in the messages
_METHOD_VIEWS = {"reshape", "ravel", "squeeze", "transpose", "swapaxes", "diagonal"}


def install_view_handlers() -> None:
    """Wrap the catalogue's handlers of the view functions (called once it is loaded)."""
    for f, name in VIEW_FUNCTIONS.items():
        h = FUNCTION_HANDLERS.get(f)
        if h is not None and not hasattr(h, "__wrapped__"):
            FUNCTION_HANDLERS[f] = viewing(h, name)


class Stale:
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


def describe(key: Any) -> str:
    """How the view made by ``key`` (a basic index or an operation's name) reads in an
    error message: ``x[1:]``, ``x.reshape(...)``."""
    if isinstance(key, str):
        if key in ("real", "imag", "T", "mT"):
            return f"x.{key}"
        return f"x.{key}(...)" if key in _METHOD_VIEWS else f"np.{key}(x, ...)"
    return f"x[{key_text(key)}]"


def key_text(key: Any) -> str:
    """A basic index as written between brackets: ``1:``, ``..., 0``."""
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


def poison_views(obj: Any, keep: Any, write: str) -> list[Any]:
    """Make every live view of ``obj`` (and views of those) but ``keep`` stale, except
    views of all of ``obj`` (``x.view()``, ``x[...]``, ``np.reshape(x, x.shape)``): those
    stay linked and are returned, for the caller to rebind to the written value, as
    NumPy's would show it (their own views are treated alike)."""
    followers: list[Any] = []
    _poison(obj, keep, write, followers)
    return followers


def _whole(key: Any) -> bool:
    return type(key) is tuple and len(key) == 1 and key[0] is Ellipsis


def _poison(obj: Any, keep: Any, write: str, followers: list[Any]) -> None:
    views = getattr(obj, "_views", None)
    if views is None:
        return
    kept = [_ref(keep)] if keep is not None else []
    for r in views:
        v = r()
        if v is None or v is keep:
            continue
        link = getattr(v, "_base", None)
        if link is None:  # already made stale (reached twice)
            continue
        if _whole(link[1]):
            followers.append(v)
            kept.append(r)
            _poison(v, None, write, followers)
        else:
            _stale(v, write)
    obj._views = kept


def _stale(view: Any, write: str) -> None:
    """Make ``view`` and every view taken from it stale."""
    stack = [view]
    while stack:
        v = stack.pop()
        link = getattr(v, "_base", None)
        if link is None:
            continue
        v.primal = Stale(f"a view {describe(link[1])} taken before {write} was written")
        del v._base
        for r in getattr(v, "_views", ()):
            w = r()
            if w is not None:
                stack.append(w)
        try:
            del v._views
        except AttributeError:
            pass


# ------------------------------------------------------------------ rebinding
def rebind(obj: Any, new: Any) -> None:
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


# ------------------------------------------------------------------ constants
def constant(value: Any, like: Any) -> Any:
    """The plain (or only batched) ``value`` as a value of ``like``'s trace with no
    derivative: a constant a write can rebind ``like`` to, and the traced buffer
    ``np.zeros_like`` of a traced value gives."""
    trace = like._trace
    if isinstance(trace, (FinishedTape, FinishedForwardTrace, FinishedBatchTrace)):
        raise EscapedTracerError(trace.what, "an in-place write")
    if type(trace) is FinishedStagingTrace:
        trace.process(None, (), {})  # (raises: the value escaped its recorded call)
    if isinstance(value, Tracer) and value._level >= like._level:
        return value
    return constant_on(value, trace)


def constant_on(value: Any, trace: Any) -> Any:
    """The plain (or outer-level traced) ``value`` as a value of the running ``trace``
    with no derivative at its level (dualrev/buffers.py makes its buffers with it)."""
    if isinstance(trace, Tape):
        trace.nodes.append((None, (), CONSTANT, value, ()))
        return Traced(value, trace, len(trace.nodes) - 1)
    if isinstance(trace, ForwardTrace):
        dt = dtype_of(value)
        return Dual(value, np.zeros(shape_of(value), dt if dt.kind in "fc" else float),
                    trace)
    if isinstance(trace, BatchTrace):
        return Batched(np.array(np.broadcast_to(concrete(value) if not isinstance(
            value, Tracer) else value, (trace.size,) + tuple(shape_of(value)))), trace)
    if type(trace) is StagingTrace:  # a dr.replay recording: a constant of the program
        slot = trace.const(value)
        return Staged(trace.consts[slot], trace, slot)
    raise InPlaceError("a write into a value of an unknown trace")


def constant_like(a: Any, make: Any, own: np.ndarray) -> Any:
    """``make(shape, dtype)`` (np.zeros, np.ones) of the shape and dtype of the plain
    ``own`` (one element's, under vmap: the batch axes of the traced ``a`` go in front)
    as a constant of ``a``'s trace: a buffer writes into which are recorded
    (``np.zeros_like(x)``)."""
    traces = batch_traces(a)
    if traces:
        lead = np.shape(concrete(a))[:len(traces)]
        value = rebatch(make(lead + own.shape, own.dtype), a)
    else:
        value = make(own.shape, own.dtype)
    out = value if a._bdepth else constant(value, a)
    if not own.shape and isinstance(out, Tracer):
        out._array0d = True  # np.zeros_like of a 0-d value is a 0-d array, not a scalar
    return out


def clone(x: Any) -> Any:
    """Another object standing for the same traced value (``x.copy()``, ``+x``): a
    later write into either is not seen by the other, as with NumPy's copies."""
    c = object.__new__(type(x))
    c.primal = x.primal
    c._trace = x._trace
    c._level = x._level
    for name in ("tangent", "_index", "_array0d"):
        try:
            setattr(c, name, getattr(x, name))
        except AttributeError:
            pass
    return c


def clone_laid_out(x: Any, order: str = "K") -> Any:
    """``clone``, with a plain value laid out as NumPy's copy in ``order`` is (``x.copy()``
    is C, ``copy.copy`` keeps the order): a later np.ascontiguousarray of the copy then
    gives the same object where NumPy's does. The value of each level is copied only
    where its layout differs (a strided view's)."""
    c = clone(x)
    p = c.primal
    if isinstance(p, Tracer):
        c.primal = clone_laid_out(p, order)
    elif type(p) is np.ndarray and p.ndim > 0:
        flags = p.flags
        laid = (flags.c_contiguous if order == "C" else flags.f_contiguous if order == "F"
                else flags.c_contiguous or flags.f_contiguous)
        if not laid:
            c.primal = np.array(p, order="K" if order in ("K", "A") else order)
    return c


METHODS["clone"] = clone
METHODS["clone_laid_out"] = clone_laid_out
