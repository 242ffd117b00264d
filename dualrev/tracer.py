"""What traced values share: Python's operators, NumPy's override protocols
(``__array_ufunc__``, ``__array_function__``), ndarray-like attributes and methods, and
the refusals (coercion to float/ndarray, in-place writes) that would lose a derivative.

Every spelling of an operation (``x * y``, ``np.multiply(x, y)``, ``x.sum()``,
``np.sum(x)``) arrives at the same catalogue entry: the operators and the methods that
are NumPy functions through the tables keyed by NumPy's own objects (``UFUNC_HANDLERS``,
``FUNCTION_HANDLERS``), the traced values' own operations (indexing, writes, casts,
copies) by name, imported from the modules below the traces that run them (at.py,
indexing.py, cast.py, inplace.py).
"""

from __future__ import annotations

import itertools
import math
import operator
import sys
import threading
import types
from typing import Any

import numpy as np

from . import config, namespace

# what the methods run (layer 2, below the traces); at.py's functions named as methods
# are imported as at_<name>, so that a method's body never reads like a call of itself
from .at import (
    FlatIter,
    inplace_op,
    set_flat,
    setitem,
    ufunc_at,
    ufunc_out,
)
from .at import fill as at_fill
from .at import partition as at_partition
from .at import put as at_put
from .at import resize as at_resize
from .at import sort as at_sort
from .at import view as at_view
from .cast import astype
from .diagnose import explain
from .errors import InPlaceError, NoDerivativeRule, PlainBufferError, TracerConversionError
from .indexing import getitem
from .inplace import clone, clone_laid_out
from .primitive import (
    FUNCTION_HANDLERS,
    PLAIN_SCALARS,
    UFUNC_HANDLERS,
    Tracer,
    bind,
    concrete,
    dtype_of,
    no_rule,
    shape_of,
    strip,
)
from .scipy_dispatch import scipy_caller

_levels = itertools.count(1)

# NumPy's functions as they are at import: the handlers are registered for these, and
# some of NumPy's names are replaced while a transform runs (dualrev/namespace.py), so the
# methods below must not look them up in NumPy's namespace when they run.
_np = types.SimpleNamespace(**{k: v for k, v in vars(np).items() if not k.startswith("__")})


# The primitives behind the arithmetic operators, looked up once (operators are the
# hottest path there is): the catalogue hands them over when it is loaded.
_ADD: Any = None
_SUB: Any = None
_MUL: Any = None
_DIV: Any = None
_POW: Any = None


def use_operator_primitives() -> None:
    """Read the arithmetic operators' primitives from the ufunc registry (called by the
    catalogue once it has registered them)."""
    global _ADD, _SUB, _MUL, _DIV, _POW
    _ADD, _SUB, _MUL = (UFUNC_HANDLERS[np.add], UFUNC_HANDLERS[np.subtract],
                        UFUNC_HANDLERS[np.multiply])
    _DIV, _POW = UFUNC_HANDLERS[np.true_divide], UFUNC_HANDLERS[np.power]


def new_level() -> int:
    """A fresh nesting level, higher than every level handed out before: each transform
    call takes one, so the innermost transform's values are always the highest."""
    return next(_levels)


# The traces running in each thread, oldest first (Tape, ForwardTrace and BatchTrace note
# themselves when made; a finished one is dropped when next seen): the innermost running
# trace is the one a buffer made by np.zeros in the user's code belongs to
# (dualrev/buffers.py). Per thread, so that a transform in one thread never hands its
# trace to code another thread runs.
_running = threading.local()


def note_running(trace: Any) -> None:
    """Record that ``trace`` (a new Tape, ForwardTrace or BatchTrace) runs in this thread
    until it is finished."""
    try:
        traces = _running.traces
    except AttributeError:
        _running.traces = [trace]
        return
    while traces and traces[-1].finished:
        traces.pop()
    if len(traces) >= 32:  # finished traces under a running one (made but never finished)
        traces[:] = [t for t in traces if not t.finished]
    traces.append(trace)


def note_finished(trace: Any) -> None:
    """Forget ``trace`` (its transform has returned), so that the list holds no finished
    tape's entries alive (a vjp's tape lives as long as its pullback, no longer)."""
    traces = getattr(_running, "traces", None)
    if not traces:
        return
    if traces[-1] is trace:
        traces.pop()
        return
    for i in range(len(traces) - 2, -1, -1):
        if traces[i] is trace:
            del traces[i]
            return


# The passes a drawing reads (dualrev.drawing): while one records in this thread
# (``watch_passes``), each trace made announces the pass it runs an operation in, as
# ``(level, transform name, pass)`` on a stack, outermost first; the drawing's recording
# tape reads it for each operation it records. A trace made while nothing watches
# announces nothing: it chooses its class when made, so normal runs pay nothing.
_passes = threading.local()
#: how many drawings record, in any thread: what a trace made tests (one list read; a
#: trace of another thread then announces into its own thread's stack, unread)
DRAWING = [0]
_drawing_lock = threading.Lock()


def watch_passes(on: bool) -> None:
    """A drawing starts (``on``) or stops recording in this thread."""
    step = 1 if on else -1
    with _drawing_lock:
        DRAWING[0] += step
    _passes.watched = getattr(_passes, "watched", 0) + step
    if not _passes.watched:
        _passes.stack = []


def enter_pass(trace: Any, phase: str) -> None:
    """``trace`` runs its pass ``phase`` ("forward", "backward", "push", "primal",
    "tangent", "batched") until ``exit_pass``."""
    try:
        stack = _passes.stack
    except AttributeError:
        stack = _passes.stack = []
    stack.append((trace.level, trace.what, phase))


def exit_pass() -> None:
    _passes.stack.pop()


def current_passes() -> tuple[tuple[int, str, str], ...]:
    """The announced passes now running, outermost first."""
    return tuple(getattr(_passes, "stack", ()))


def transform_entered() -> None:
    """A transform starts running the user's code in this thread (transforms._Tracing)."""
    _running.depth = getattr(_running, "depth", 0) + 1


def transform_exited() -> None:
    """A transform has finished in this thread; the last one to finish forgets every
    trace noted meanwhile (a trace made by hand and never finished owns no buffer)."""
    depth = _running.depth = _running.depth - 1
    if depth == 0:
        _running.traces = []


def innermost_running() -> Any:
    """The trace of the innermost transform running in this thread (the highest level
    not finished), or None (also while no transform runs in this thread)."""
    if not getattr(_running, "depth", 0):
        return None
    traces = getattr(_running, "traces", None)
    while traces:
        t = traces[-1]
        if not t.finished:
            return t
        traces.pop()
    return None

_NONE: dict[str, Any] = {}
_NO_MEMORY = ("a traced value has no {} (its memory is dualrev's: writes into it are "
              "recorded and its views tracked); take dualrev.strip(x) for the plain array")
_PLAIN = (*PLAIN_SCALARS, np.ndarray)  # operands no trace can own
# The operands with which an arithmetic operator hands the call to the traced operand's
# own trace (a shortcut past bind): _PLAIN, or none where the shortcuts are off.
_DIRECT: set[type] = set()


@config.on_shortcuts
def _choose_direct(on: bool) -> None:
    _DIRECT.clear()
    if on:
        _DIRECT.update(_PLAIN)


# Operand types whose own reflected operators handle a traced value (scipy.sparse
# matrices, registered by the catalogue): ``x @ L`` (and ``x * L``, ``x / L``, ``x + L``,
# ``x - L``) return NotImplemented so Python calls ``L.__rmatmul__(x)`` (``__rmul__``...),
# instead of NumPy's ufunc reading L as a 0-d object array. The test sits after the
# plain-operand shortcut: the common path pays nothing.
_DEFER_MATMUL: tuple[type, ...] = ()


def defer_matmul_to(*types: type) -> None:
    """Let ``traced @ operand`` go to the operand's ``__rmatmul__`` for these types."""
    global _DEFER_MATMUL
    _DEFER_MATMUL = (*_DEFER_MATMUL, *types)


# Operand types whose own __array_ufunc__ takes a binary ufunc of a traced value and one
# of them (xarray's DataArray, registered by defer_to_xarray once the user has imported
# xarray): ``np.multiply(traced, da)`` returns NotImplemented, and NumPy asks the
# DataArray, which labels the result and calls the ufunc on the traced value inside.
# Exact types (a set: isinstance against a tuple costs several times more).
_DEFER_UFUNC: frozenset[type] = frozenset()


def defer_ufuncs_to(*types: type) -> None:
    """Let a binary ufunc of a traced value and an operand of exactly these types go to
    the operand's ``__array_ufunc__`` (which must accept traced values as NEP 18 arrays)."""
    global _DEFER_UFUNC
    _DEFER_UFUNC = _DEFER_UFUNC | frozenset(types)


_XARRAY_PENDING = True  # until xarray's types are operands traced values defer to


def defer_to_xarray() -> None:
    """Once the user's program has imported xarray (dualrev never imports it), let
    ``traced * dataarray`` (``+ - * / @``) and ``np.multiply(traced, dataarray)`` go to
    xarray, which labels the result and calls NumPy on the traced value inside; without
    this the traced value's operator would run NumPy on the DataArray and trace a
    DataArray as if it were an array. Called where tracing starts (the transforms' run,
    a replay's recording): one flag test when done."""
    global _XARRAY_PENDING
    if _XARRAY_PENDING and "xarray" in sys.modules:
        _XARRAY_PENDING = False
        import xarray as xr

        types = (xr.DataArray, xr.Dataset, xr.Variable)
        defer_matmul_to(*types)
        defer_ufuncs_to(*types)

# ufunc methods other than __call__ that have a meaning we support
_UFUNC_REDUCE = {np.add: np.sum, np.multiply: np.prod, np.maximum: np.max, np.minimum: np.min}
_UFUNC_ACCUMULATE = {np.add: np.cumsum, np.multiply: np.cumprod}
# ~, &, |, ^ of boolean values (masks, which are batched under vmap) are the logical ufuncs
_BOOLEAN = {np.invert: np.logical_not, np.bitwise_and: np.logical_and,
            np.bitwise_or: np.logical_or, np.bitwise_xor: np.logical_xor}


def _conversion(what: str, kind: str) -> TracerConversionError:
    """The error for converting a traced value (``what``), naming the construct on the
    user's line where it can be found: a ``PlainBufferError`` for ``out[i] = t``."""
    why = explain(kind)
    if getattr(why, "store", False):
        return PlainBufferError(what, why)
    return TracerConversionError(what, why)


#: what ``no_derivative`` answers for a value that may carry a derivative
NO_PLAIN_VALUE = object()


def no_derivative(x: Any) -> Any:
    """The plain value of the traced ``x`` if it provably carries no derivative at any
    level, else ``NO_PLAIN_VALUE``; each level answers for itself
    (``_no_derivative_here``: on a tape, no input reaches its entry; in forward mode its
    tangent is exactly zero; a batch is never one plain value). Such values are a buffer
    made by np.zeros in the user's code and what is computed from it alone
    (dualrev/buffers.py)."""
    while isinstance(x, Tracer):
        if x._staged:  # a replay's recorded value: it converts, recording a guard
            return x
        if not x._no_derivative_here():
            return NO_PLAIN_VALUE
        x = x.primal
    return x


def _plain_value(x: Any, what: str, kind: str) -> Any:
    """The plain value of ``x`` where it provably carries no derivative, else the
    conversion error."""
    v = no_derivative(x)
    if v is NO_PLAIN_VALUE:
        raise _conversion(what, kind)
    return v


class TracedBase(Tracer):
    """Behaviour common to ``Dual`` and ``Traced``: an immutable ndarray look-alike."""

    __slots__ = ()
    __array_priority__ = 1000.0
    __hash__ = None  # type: ignore[assignment]  # like ndarray: == is elementwise

    def _no_derivative_here(self) -> bool:
        """Whether this level provably adds no derivative to the value (see
        ``no_derivative``); each kind of traced value answers for its own level."""
        return False

    # ------------------------------------------------------------ NumPy protocols
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if kwargs.get("out") is not None:
            if method != "__call__":
                raise InPlaceError(f"numpy.{ufunc.__name__}.{method}(..., out=...)")
            return ufunc_out(ufunc, inputs, kwargs)  # out= a traced x: a write
        if method == "__call__":
            if len(inputs) == 2 and type(
                    inputs[1] if inputs[0] is self else inputs[0]) in _DEFER_UFUNC:
                return NotImplemented
            handler = UFUNC_HANDLERS.get(ufunc)
            if handler is None and ufunc in _BOOLEAN and all(
                    dtype_of(a) == np.bool_ for a in inputs):
                handler = UFUNC_HANDLERS[_BOOLEAN[ufunc]]
            if handler is None:
                raise no_rule(ufunc)
            dtype = None
            if kwargs:
                kwargs = {k: v for k, v in kwargs.items() if v is not None and k != "out"}
                dtype = kwargs.pop("dtype", None)
                if kwargs.get("casting") == "same_kind":
                    kwargs.pop("casting")
                if kwargs:
                    raise no_rule(ufunc, f"Keyword arguments {sorted(kwargs)} are not supported.")
            result = handler(*inputs)
            return result if dtype is None else astype(result, dtype)
        if method == "reduce" and ufunc in _UFUNC_REDUCE:
            kwargs.setdefault("axis", 0)
            return _UFUNC_REDUCE[ufunc](*inputs, **kwargs)
        if method == "accumulate" and ufunc in _UFUNC_ACCUMULATE:
            kwargs.setdefault("axis", 0)
            return _UFUNC_ACCUMULATE[ufunc](*inputs, **kwargs)
        if method == "at":
            return ufunc_at(ufunc, inputs)
        raise no_rule(ufunc, f"The ufunc method .{method} is not supported.")

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        handler = FUNCTION_HANDLERS.get(func)
        if handler is None:
            # a name replaced while a transform runs, which like= dispatch hands over
            handler = FUNCTION_HANDLERS.get(namespace.original_of(func))
            if handler is None:
                raise no_rule(func)
        return handler(*args, **kwargs)

    # A value that provably carries no derivative at any level (a buffer made by np.zeros
    # in the user's code and what is computed from it alone: dualrev/buffers.py) converts
    # as the plain value it is; the proof is looked for only here, where the conversion
    # would otherwise raise.
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        v = no_derivative(self)
        if v is not NO_PLAIN_VALUE:
            return np.array(v, dtype=dtype, copy=True)
        caller = scipy_caller()
        if caller is not None:
            raise TracerConversionError(caller)
        raise _conversion("np.asarray / np.array (the __array__ protocol)", "array")

    # Dask tokenizes every value it puts into its task graph as a constant: a traced value
    # there (``buf[i] = w[0]`` with ``buf`` a Dask array, ``da.from_array(w)``) would be
    # computed later as an opaque object, outside the tape, and the derivative through it
    # silently lost. Dask's graphs built from traced values go through NumPy's protocols
    # instead (``X @ w``, ``np.where(m, w, X)``), which never tokenize a traced value.
    def __dask_tokenize__(self) -> Any:
        raise TracerConversionError(
            "Dask's tokenize, putting it into a task graph",
            "dualrev: a traced value was put into a Dask task graph as a constant (a write "
            "such as buf[i] = value into a Dask array, or da.from_array / da.asarray of "
            "it), where Dask would compute it later outside the tape; build the array from "
            "the differentiated values instead: writes into np.zeros_like(w) of a "
            "differentiated w, dualrev.at(x)[i].set(v), np.where(mask, value, dask_array) "
            "or np.concatenate")

    # ------------------------------------------------------------ coercions
    def __float__(self) -> float:
        return float(_plain_value(self, "float()", "float"))

    # int(), math.floor/ceil/trunc and round() are piecewise constant: their derivative
    # is zero almost everywhere (JAX gives 0 for floor), so the plain result carries it
    # exactly. float() and .item() stay refused: a float would stand for the value
    # itself and silently drop its derivative. (Batched values refuse in strip.)
    def __int__(self) -> int:
        return int(strip(self))

    def __floor__(self) -> int:
        return math.floor(strip(self))

    def __ceil__(self) -> int:
        return math.ceil(strip(self))

    def __trunc__(self) -> int:
        return math.trunc(strip(self))

    def __round__(self, ndigits: int | None = None) -> Any:
        v = strip(self)
        if np.ndim(v) != 0:
            raise TypeError(f"round() of a traced array of shape {np.shape(v)}: like an "
                            "ndarray, it has no __round__; use np.round(x)")
        v = np.asarray(v)[()]  # a NumPy scalar, whose round() NumPy defines
        return round(v) if ndigits is None else round(v, ndigits)

    def __complex__(self) -> complex:
        return complex(_plain_value(self, "complex()", "complex"))

    def __index__(self) -> int:
        return operator.index(_plain_value(self, "use as an index (operator.index)", "index"))

    def item(self, *args: Any) -> Any:
        return np.asarray(_plain_value(self, ".item()", "item")).item(*args)

    def tolist(self) -> Any:
        return np.asarray(_plain_value(self, ".tolist()", "tolist")).tolist()

    def __format__(self, spec: str) -> str:
        # Formatting prints the value: a string carries no derivative, so nothing is
        # lost (a batch prints all its elements, as an array would).
        return format(concrete(self), spec)

    def __bool__(self) -> bool:
        # Truth tests (`if x:`) pick a branch; they do not carry a derivative.
        return bool(strip(self))

    # In-place writes rebind this object to the written value (dualrev/at.py).
    def __setitem__(self, key: Any, value: Any) -> None:
        setitem(self, key, value)

    def fill(self, value: Any) -> None:
        at_fill(self, value)

    def sort(self, axis: int = -1, kind: Any = None, order: Any = None) -> None:
        at_sort(self, axis, kind, order)

    def __iadd__(self, o: Any) -> Any:
        return inplace_op(self, "+", self + o)

    def __isub__(self, o: Any) -> Any:
        return inplace_op(self, "-", self - o)

    def __imul__(self, o: Any) -> Any:
        return inplace_op(self, "*", self * o)

    def __itruediv__(self, o: Any) -> Any:
        return inplace_op(self, "/", self / o)

    def __ifloordiv__(self, o: Any) -> Any:
        return inplace_op(self, "//", self // o)

    def __imod__(self, o: Any) -> Any:
        return inplace_op(self, "%", self % o)

    def __ipow__(self, o: Any) -> Any:
        return inplace_op(self, "**", self ** o)

    def __imatmul__(self, o: Any) -> Any:
        return inplace_op(self, "@", self @ o)

    def __iand__(self, o: Any) -> Any:
        return inplace_op(self, "&", self & o)

    def __ior__(self, o: Any) -> Any:
        return inplace_op(self, "|", self | o)

    def __ixor__(self, o: Any) -> Any:
        return inplace_op(self, "^", self ^ o)

    def round(self, decimals: int = 0) -> Any:
        return FUNCTION_HANDLERS[_np.round](self, decimals)  # piecewise constant

    # ------------------------------------------------------------ attributes
    @property
    def shape(self) -> tuple[int, ...]:
        return shape_of(self)

    @property
    def ndim(self) -> int:
        return len(shape_of(self))

    @property
    def size(self) -> int:
        return math.prod(shape_of(self))

    @property
    def dtype(self) -> np.dtype:
        return dtype_of(self)

    @property
    def T(self) -> Any:
        return FUNCTION_HANDLERS[_np.transpose](self)

    @property
    def mT(self) -> Any:
        return FUNCTION_HANDLERS[_np.swapaxes](self, -1, -2)

    def __len__(self) -> int:
        s = shape_of(self)
        if not s:
            raise TypeError("len() of unsized traced value")
        return s[0]

    def __iter__(self) -> Any:
        for i in range(len(self)):
            yield self[i]

    # ------------------------------------------------------------ operators
    # Each goes through bind, as every traced call does, to the ufunc's catalogue entry;
    # with a plain other operand the arithmetic ones hand the call to their own trace
    # directly (the shortcut bind would take anyway, see dualrev.config).
    def __add__(self, o: Any) -> Any:
        if type(o) in _DIRECT:  # only this value traced: its trace
            return self._trace.process(_ADD, (self, o), _NONE)
        if isinstance(o, _DEFER_MATMUL):
            return NotImplemented
        return bind(_ADD, (self, o), _NONE)

    def __radd__(self, o: Any) -> Any:
        if type(o) in _DIRECT:  # only this value traced: its trace
            return self._trace.process(_ADD, (o, self), _NONE)
        return bind(_ADD, (o, self), _NONE)

    def __sub__(self, o: Any) -> Any:
        if type(o) in _DIRECT:  # only this value traced: its trace
            return self._trace.process(_SUB, (self, o), _NONE)
        if isinstance(o, _DEFER_MATMUL):
            return NotImplemented
        return bind(_SUB, (self, o), _NONE)

    def __rsub__(self, o: Any) -> Any:
        if type(o) in _DIRECT:  # only this value traced: its trace
            return self._trace.process(_SUB, (o, self), _NONE)
        return bind(_SUB, (o, self), _NONE)

    def __mul__(self, o: Any) -> Any:
        if type(o) in _DIRECT:  # only this value traced: its trace
            return self._trace.process(_MUL, (self, o), _NONE)
        if isinstance(o, _DEFER_MATMUL):
            return NotImplemented
        return bind(_MUL, (self, o), _NONE)

    def __rmul__(self, o: Any) -> Any:
        if type(o) in _DIRECT:  # only this value traced: its trace
            return self._trace.process(_MUL, (o, self), _NONE)
        return bind(_MUL, (o, self), _NONE)

    def __truediv__(self, o: Any) -> Any:
        if type(o) in _DIRECT:  # only this value traced: its trace
            return self._trace.process(_DIV, (self, o), _NONE)
        if isinstance(o, _DEFER_MATMUL):
            return NotImplemented
        return bind(_DIV, (self, o), _NONE)

    def __rtruediv__(self, o: Any) -> Any:
        if type(o) in _DIRECT:  # only this value traced: its trace
            return self._trace.process(_DIV, (o, self), _NONE)
        return bind(_DIV, (o, self), _NONE)

    def __floordiv__(self, o: Any) -> Any:
        return bind(UFUNC_HANDLERS[np.floor_divide], (self, o), _NONE)

    def __rfloordiv__(self, o: Any) -> Any:
        return bind(UFUNC_HANDLERS[np.floor_divide], (o, self), _NONE)

    def __mod__(self, o: Any) -> Any:
        return bind(UFUNC_HANDLERS[np.remainder], (self, o), _NONE)

    def __rmod__(self, o: Any) -> Any:
        return bind(UFUNC_HANDLERS[np.remainder], (o, self), _NONE)

    def __divmod__(self, o: Any) -> Any:
        return self // o, self % o

    def __rdivmod__(self, o: Any) -> Any:
        return o // self, o % self

    def __pow__(self, o: Any) -> Any:
        if type(o) in _DIRECT:  # only this value traced: its trace
            return self._trace.process(_POW, (self, o), _NONE)
        return bind(_POW, (self, o), _NONE)

    def __rpow__(self, o: Any) -> Any:
        if type(o) in _DIRECT:  # only this value traced: its trace
            return self._trace.process(_POW, (o, self), _NONE)
        return bind(_POW, (o, self), _NONE)

    def __matmul__(self, o: Any) -> Any:
        if isinstance(o, _DEFER_MATMUL):
            return NotImplemented
        return UFUNC_HANDLERS[np.matmul](self, o)

    def __rmatmul__(self, o: Any) -> Any:
        return UFUNC_HANDLERS[np.matmul](o, self)

    def __neg__(self) -> Any:
        return bind(UFUNC_HANDLERS[np.negative], (self,), _NONE)

    def __pos__(self) -> Any:
        return clone(self)  # a copy, as NumPy's +x: writes into it stay there

    def __abs__(self) -> Any:
        return bind(UFUNC_HANDLERS[np.absolute], (self,), _NONE)

    # Comparisons give plain boolean arrays (batched ones under vmap): usable in `if`,
    # masks and np.where.
    def __lt__(self, o: Any) -> Any:
        return bind(UFUNC_HANDLERS[np.less], (self, o), _NONE)

    def __le__(self, o: Any) -> Any:
        return bind(UFUNC_HANDLERS[np.less_equal], (self, o), _NONE)

    def __gt__(self, o: Any) -> Any:
        return bind(UFUNC_HANDLERS[np.greater], (self, o), _NONE)

    def __ge__(self, o: Any) -> Any:
        return bind(UFUNC_HANDLERS[np.greater_equal], (self, o), _NONE)

    def __eq__(self, o: Any) -> Any:  # type: ignore[override]
        return bind(UFUNC_HANDLERS[np.equal], (self, o), _NONE)

    def __ne__(self, o: Any) -> Any:  # type: ignore[override]
        return bind(UFUNC_HANDLERS[np.not_equal], (self, o), _NONE)

    def __invert__(self) -> Any:
        return np.invert(self)

    def __and__(self, o: Any) -> Any:
        return np.bitwise_and(self, o)

    def __rand__(self, o: Any) -> Any:
        return np.bitwise_and(o, self)

    def __or__(self, o: Any) -> Any:
        return np.bitwise_or(self, o)

    def __ror__(self, o: Any) -> Any:
        return np.bitwise_or(o, self)

    def __xor__(self, o: Any) -> Any:
        return np.bitwise_xor(self, o)

    def __rxor__(self, o: Any) -> Any:
        return np.bitwise_xor(o, self)

    def __getitem__(self, idx: Any) -> Any:
        return getitem(self, idx)

    # ------------------------------------------------------------ ndarray methods
    # Each forwards to the NumPy function's handler, so a method and the function
    # always meet the same rule.
    def sum(self, *a: Any, **k: Any) -> Any:
        return FUNCTION_HANDLERS[_np.sum](self, *a, **k)

    def mean(self, *a: Any, **k: Any) -> Any:
        return FUNCTION_HANDLERS[_np.mean](self, *a, **k)

    def prod(self, *a: Any, **k: Any) -> Any:
        return FUNCTION_HANDLERS[_np.prod](self, *a, **k)

    def max(self, *a: Any, **k: Any) -> Any:
        return FUNCTION_HANDLERS[_np.max](self, *a, **k)

    def min(self, *a: Any, **k: Any) -> Any:
        return FUNCTION_HANDLERS[_np.min](self, *a, **k)

    def var(self, *a: Any, **k: Any) -> Any:
        return FUNCTION_HANDLERS[_np.var](self, *a, **k)

    def std(self, *a: Any, **k: Any) -> Any:
        return FUNCTION_HANDLERS[_np.std](self, *a, **k)

    def cumsum(self, *a: Any, **k: Any) -> Any:
        return FUNCTION_HANDLERS[_np.cumsum](self, *a, **k)

    def cumprod(self, *a: Any, **k: Any) -> Any:
        return FUNCTION_HANDLERS[_np.cumprod](self, *a, **k)

    def reshape(self, *shape: Any, order: str = "C") -> Any:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return FUNCTION_HANDLERS[_np.reshape](self, shape, order=order)

    def ravel(self, order: str = "C") -> Any:
        return FUNCTION_HANDLERS[_np.ravel](self, order=order)

    def flatten(self, order: str = "C") -> Any:
        # a copy, unlike ravel: not recorded as a view, and never the object itself
        ravel = FUNCTION_HANDLERS[_np.ravel]
        out = getattr(ravel, "__wrapped__", ravel)(self, order=order)
        return clone(out) if out is self else out

    def transpose(self, *axes: Any) -> Any:
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return FUNCTION_HANDLERS[_np.transpose](self, axes or None)

    def swapaxes(self, a1: int, a2: int) -> Any:
        return FUNCTION_HANDLERS[_np.swapaxes](self, a1, a2)

    def squeeze(self, axis: Any = None) -> Any:
        return FUNCTION_HANDLERS[_np.squeeze](self, axis)

    def dot(self, other: Any) -> Any:
        return FUNCTION_HANDLERS[_np.dot](self, other)

    def clip(self, a_min: Any = None, a_max: Any = None) -> Any:
        return FUNCTION_HANDLERS[_np.clip](self, a_min, a_max)

    def take(self, indices: Any, axis: Any = None) -> Any:
        return FUNCTION_HANDLERS[_np.take](self, indices, axis)

    def repeat(self, repeats: Any, axis: Any = None) -> Any:
        return FUNCTION_HANDLERS[_np.repeat](self, repeats, axis)

    def trace(self, *a: Any, **k: Any) -> Any:
        return FUNCTION_HANDLERS[_np.trace](self, *a, **k)

    def diagonal(self, *a: Any, **k: Any) -> Any:
        return FUNCTION_HANDLERS[_np.diagonal](self, *a, **k)

    def copy(self, order: str = "C") -> Any:
        # another object: a write into one is not the other's
        return clone_laid_out(self, order)

    def argpartition(self, *a: Any, **k: Any) -> Any:
        return FUNCTION_HANDLERS[_np.argpartition](self, *a, **k)

    def searchsorted(self, *a: Any, **k: Any) -> Any:
        return FUNCTION_HANDLERS[_np.searchsorted](self, *a, **k)

    def compress(self, condition: Any, axis: Any = None) -> Any:
        return FUNCTION_HANDLERS[_np.compress](condition, self, axis)

    def choose(self, choices: Any, mode: str = "raise") -> Any:
        return FUNCTION_HANDLERS[_np.choose](self, choices, mode=mode)

    @property
    def itemsize(self) -> int:
        return dtype_of(self).itemsize

    @property
    def nbytes(self) -> int:
        return self.size * dtype_of(self).itemsize

    @property
    def device(self) -> str:
        return "cpu"

    def to_device(self, device: Any, /, *, stream: Any = None) -> Any:
        if device != "cpu":
            raise ValueError(f"unsupported device {device!r}")
        return self  # NumPy's to_device("cpu") is the array itself

    # The memory behind a traced value is dualrev's (writes are recorded, views tracked):
    # these are no attributes of it, as for an object that is not an ndarray.
    @property
    def flags(self) -> Any:
        raise AttributeError(_NO_MEMORY.format("flags"))

    @property
    def strides(self) -> Any:
        raise AttributeError(_NO_MEMORY.format("strides"))

    @property
    def base(self) -> Any:
        raise AttributeError(_NO_MEMORY.format("base"))

    @property
    def data(self) -> Any:
        raise AttributeError(_NO_MEMORY.format("data"))

    @property
    def ctypes(self) -> Any:
        raise AttributeError(_NO_MEMORY.format("ctypes"))

    def tobytes(self, *a: Any, **k: Any) -> Any:
        raise _conversion("x.tobytes()", "tobytes")

    def tostring(self, *a: Any, **k: Any) -> Any:  # (NumPy < 2.3's name for tobytes)
        raise _conversion("x.tostring()", "tostring")

    def tofile(self, *a: Any, **k: Any) -> Any:
        raise _conversion("x.tofile()", "tofile")

    def dump(self, *a: Any, **k: Any) -> Any:
        raise _conversion("x.dump() (a pickle)", "dump")

    def dumps(self, *a: Any, **k: Any) -> Any:
        raise _conversion("x.dumps() (a pickle)", "dumps")

    def byteswap(self, *a: Any, **k: Any) -> Any:
        raise NoDerivativeRule("ndarray.byteswap", "It works on the bytes of the array.")

    def getfield(self, *a: Any, **k: Any) -> Any:
        raise NoDerivativeRule("ndarray.getfield", "It works on the bytes of the array.")

    def setfield(self, *a: Any, **k: Any) -> Any:
        raise NoDerivativeRule("ndarray.setfield", "It works on the bytes of the array.")

    def setflags(self, *a: Any, **k: Any) -> Any:
        raise NoDerivativeRule("ndarray.setflags", "A traced value has no flags: dualrev records "
                      "its writes; keep the plain array's flags outside the transform.")

    def view(self, dtype: Any = None, type: Any = None) -> Any:
        return at_view(self, dtype, type)

    def put(self, indices: Any, values: Any, mode: str = "raise") -> None:
        at_put(self, indices, values, mode)

    def partition(self, kth: Any, axis: int = -1, kind: str = "introselect",
                  order: Any = None) -> None:
        at_partition(self, kth, axis, kind, order)

    def resize(self, *new_shape: Any, refcheck: bool = True) -> None:
        at_resize(self, *new_shape)

    @property
    def flat(self) -> Any:
        return FlatIter(self)

    @flat.setter
    def flat(self, value: Any) -> None:
        set_flat(self, value)

    def __copy__(self) -> Any:
        return clone_laid_out(self, "K")  # copy.copy: as ndarray.__copy__

    def __deepcopy__(self, memo: Any) -> Any:
        # The same traced value on the same trace (its primal is never written in place):
        # copying the trace itself would cut the derivative. Laid out as
        # ndarray.__deepcopy__ lays its copy out (order "K").
        return clone_laid_out(self, "K")

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TracerConversionError(
            "pickle / copyreg", "dualrev: a traced value cannot be pickled: it exists "
            "only while its transform runs, and a pickle would outlive it without its "
            "derivative. Pickle the transform's plain result instead, or "
            "dualrev.strip(x) where only the value is wanted")

    __reduce__ = __reduce_ex__  # type: ignore[assignment]

    def astype(self, dtype: Any, copy: bool = True) -> Any:
        out = astype(self, dtype)
        # copy=False of the same dtype is the array itself in NumPy, writes included
        return clone(out) if out is self and copy else out

    def conj(self) -> Any:
        # ndarray.conj of a real array is the array itself (np.conj copies)
        if dtype_of(self).kind != "c":
            return self
        return UFUNC_HANDLERS[np.conjugate](self)

    conjugate = conj

    @property
    def real(self) -> Any:
        return FUNCTION_HANDLERS[_np.real](self)

    @property
    def imag(self) -> Any:
        return FUNCTION_HANDLERS[_np.imag](self)

    def all(self, *a: Any, **k: Any) -> Any:
        return FUNCTION_HANDLERS[_np.all](self, *a, **k)

    def any(self, *a: Any, **k: Any) -> Any:
        return FUNCTION_HANDLERS[_np.any](self, *a, **k)

    def argmax(self, *a: Any, **k: Any) -> Any:
        return FUNCTION_HANDLERS[_np.argmax](self, *a, **k)

    def argmin(self, *a: Any, **k: Any) -> Any:
        return FUNCTION_HANDLERS[_np.argmin](self, *a, **k)

    def argsort(self, *a: Any, **k: Any) -> Any:
        return FUNCTION_HANDLERS[_np.argsort](self, *a, **k)

    def nonzero(self) -> Any:
        return FUNCTION_HANDLERS[_np.nonzero](self)
