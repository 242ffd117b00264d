"""Plain NumPy buffers that take traced writes: ``out = np.zeros(n); out[i] = g(x[i])``
and ``u = u0.copy(); u[1:-1] += alpha * (...)`` with ``u0`` not differentiated.

NumPy converts a value stored into an ndarray in C (``ndarray.__setitem__`` has no
override hook), so a buffer must be traced *before* the write. Two places make one:

- the constructors ``np.zeros``, ``np.ones``, ``np.empty``, ``np.full``, the ``*_like``
  functions of a plain array and ``np.copy`` of one are replaced while a transform runs
  (dualrev/namespace.py); called from the user's code (not from dualrev, NumPy or SciPy)
  in a thread running a transform, a floating-point result becomes a *constant of the
  innermost running trace* (no derivative at its level, dualrev/inplace.py), whose
  writes are recorded like those into ``np.zeros_like(x)``;
- the array arguments a transform does not differentiate, and the arrays its function
  closes over, are handed to the function as ``PlainInput`` views (an ndarray subclass
  that is NumPy in everything except that its ``copy()``/``astype()`` called from the
  user's code give such a buffer: ``ndarray.copy`` is a C method no wrapper reaches).

Everything else stays plain: a buffer made before the transform started, by a name
bound before it (``from numpy import zeros``), of an integer or boolean dtype, or
inside a library; writing a traced value into one keeps the named ``PlainBufferError``.
See docs/design.md (2026-12-06, "Plain buffers").
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from . import namespace
from .diagnose import library_file, line_calls
from .inplace import constant_on
from .primitive import Tracer, dtype_of, plain_operand
from .tracer import innermost_running

_ndarray = np.ndarray
_getframe = sys._getframe

# the originals, read at import (no transform runs while dualrev is imported)
_ZEROS = np.zeros
_ONES = np.ones
_EMPTY = np.empty
_FULL = np.full
_ZEROS_LIKE = np.zeros_like
_ONES_LIKE = np.ones_like
_EMPTY_LIKE = np.empty_like
_FULL_LIKE = np.full_like
_COPY = np.copy


_HERE = os.path.dirname(os.path.abspath(__file__))
# the modules that call the transformed function (dualrev.graph records it as grad does)
_TRANSFORMS = (os.path.join(_HERE, "transforms.py"),
               os.path.join(_HERE, "drawing", "record.py"))
# custom.py runs a custom_jvp/custom_vjp body as a primitive, on plain values
_STOPS = (os.path.join(_HERE, "custom.py"),)
_USER, _TRANSFORM, _PASS, _STOP = 0, 1, 2, 3
_kinds: dict[str, int] = {}


# Array libraries that call NumPy's constructors on the user's arrays inside their own
# operations (Dask's from_array copies a closed-over ndarray into its graph): their code
# is library code, which keeps NumPy's arrays, though they live outside NumPy and SciPy
_ARRAY_LIBRARIES = ("dask", "distributed", "xarray", "cupy", "pandas")


def _array_library_file(path: str) -> bool:
    for name in _ARRAY_LIBRARIES:
        mod = sys.modules.get(name)
        f = getattr(mod, "__file__", None)
        if f and path.startswith(os.path.dirname(os.path.abspath(f)) + os.sep):
            return True
    return False


def _kind(filename: str) -> int:
    hit = _kinds.get(filename)
    if hit is None:
        path = os.path.abspath(filename)
        if not library_file(filename):
            hit = _STOP if _array_library_file(path) else _USER
        elif path in _TRANSFORMS:
            hit = _TRANSFORM
        elif path.startswith(_HERE + os.sep) and path not in _STOPS:
            hit = _PASS
        else:
            hit = _STOP
        _kinds[filename] = hit
    return hit


def _trace_for_caller(depth: int, name: str) -> Any:
    """The innermost trace running in this thread if the frame ``depth`` levels above
    the caller is the user's code run by a transform, else None. Run by a transform:
    going up the stack, dualrev/transforms.py (calling the transformed function) comes
    before any NumPy or SciPy frame; dualrev's own frames between are passed (its SciPy
    wrappers call the user's callbacks under jvp/vjp). Code that SciPy calls back on
    plain values (an ODE right-hand side in the primal solve), a custom_jvp body run as
    a primitive and library code keep NumPy's arrays."""
    trace = innermost_running()
    if trace is None:
        return None
    try:
        frame = _getframe(depth + 1)
    except ValueError:  # pragma: no cover - no such frame
        return None
    if _kind(frame.f_code.co_filename) != _USER or not line_calls(frame, name):
        return None
    frame = frame.f_back
    while frame is not None:
        k = _kind(frame.f_code.co_filename)
        if k == _TRANSFORM:
            return trace
        if k == _STOP:
            return None
        frame = frame.f_back
    return None


def as_buffer(out: Any, trace: Any) -> Any:
    """The plain floating-point array ``out`` as a constant of ``trace`` (a buffer whose
    writes are recorded); anything else (integers, booleans, objects, subclasses)
    unchanged."""
    if trace is None or type(out) is not _ndarray or out.dtype.kind not in "fc":
        return out
    buf = constant_on(out, trace)
    if not out.shape:
        buf._array0d = True  # np.zeros(()) is a 0-d array, not a NumPy scalar
    return buf


def _maker(orig: Callable[..., Any], name: str, fill_zero: bool = False) -> Callable:
    """The wrapper of a constructor taking a shape (np.zeros, np.ones, np.empty)."""

    def make(*args: Any, **kwargs: Any) -> Any:
        out = orig(*args, **kwargs)
        if kwargs.get("like") is not None:
            return out
        trace = _trace_for_caller(1, name)
        if trace is None or type(out) is not _ndarray or out.dtype.kind not in "fc":
            return out
        if fill_zero:  # np.empty: nothing uninitialised enters the recording
            out.fill(0)
        return as_buffer(out, trace)

    make.__name__ = name
    make.__qualname__ = name
    make.__doc__ = orig.__doc__
    make.__wrapped__ = orig  # type: ignore[attr-defined]
    return make


def _full(shape: Any, fill_value: Any, dtype: Any = None, order: str = "C",
          **kwargs: Any) -> Any:
    if isinstance(fill_value, Tracer) and kwargs.get("like") is None:
        trace = innermost_running()
        if trace is not None:
            # NumPy's np.full reads the fill value with np.array; the buffer's values
            # are the fill value's (its derivative kept where the dtype can carry one)
            plain = _ZEROS(shape, dtype_of(fill_value) if dtype is None else dtype, order,
                           **kwargs)
            return _FULL_LIKE(constant_on(plain, trace), fill_value)
    out = _FULL(shape, fill_value, dtype, order, **kwargs)
    if kwargs.get("like") is not None:
        return out
    return as_buffer(out, _trace_for_caller(1, "full"))


def _liker(orig: Callable[..., Any], name: str, fill_zero: bool = False) -> Callable:
    """The wrapper of a constructor taking an array (np.zeros_like, np.copy, ...): a
    traced argument goes to its handler (a constant of its own trace) as before."""

    def make(a: Any, *args: Any, **kwargs: Any) -> Any:
        out = orig(a, *args, **kwargs)
        if isinstance(a, Tracer) or isinstance(out, Tracer):
            return out
        trace = _trace_for_caller(1, name)
        if trace is None or type(out) is not _ndarray or out.dtype.kind not in "fc":
            return out
        if fill_zero:
            out.fill(0)
        return as_buffer(out, trace)

    make.__name__ = name
    make.__qualname__ = name
    make.__doc__ = orig.__doc__
    make.__wrapped__ = orig  # type: ignore[attr-defined]
    return make


def _full_like(a: Any, fill_value: Any, *args: Any, **kwargs: Any) -> Any:
    if (isinstance(fill_value, Tracer) and not isinstance(a, Tracer)
            and innermost_running() is not None):
        # NumPy's np.full_like copies the fill value into a plain array in C
        plain = _ZEROS_LIKE(a, *args, **kwargs)
        if type(plain) is _ndarray:
            return _FULL_LIKE(constant_on(plain, innermost_running()), fill_value)
    out = _FULL_LIKE(a, fill_value, *args, **kwargs)
    if isinstance(a, Tracer) or isinstance(out, Tracer):
        return out
    return as_buffer(out, _trace_for_caller(1, "full_like"))


_full_like.__doc__ = _FULL_LIKE.__doc__
_full_like.__wrapped__ = _FULL_LIKE  # type: ignore[attr-defined]
_full.__doc__ = _FULL.__doc__
_full.__wrapped__ = _FULL  # type: ignore[attr-defined]

for _name, _wrapper in (
        ("zeros", _maker(_ZEROS, "zeros")), ("ones", _maker(_ONES, "ones")),
        ("empty", _maker(_EMPTY, "empty", fill_zero=True)), ("full", _full),
        ("zeros_like", _liker(_ZEROS_LIKE, "zeros_like")),
        ("ones_like", _liker(_ONES_LIKE, "ones_like")),
        ("empty_like", _liker(_EMPTY_LIKE, "empty_like", fill_zero=True)),
        ("full_like", _full_like),
        ("copy", _liker(_COPY, "copy"))):
    namespace.replace_while_tracing(np, _name, _wrapper)


# ------------------------------------------------------------------ plain inputs
def _plain(a: Any) -> Any:
    return a.plain() if isinstance(a, PlainInput) else a


class PlainInput(np.ndarray):
    """A non-differentiated array argument (or closed-over array) as the transformed
    function sees it: a view of the caller's array that behaves as that array in every
    way (its arithmetic, indexing and NumPy functions give plain ndarrays), except that
    ``copy()`` and a copying ``astype()`` called from the user's code give a buffer that
    takes traced writes (``u = u0.copy(); u[1:-1] += alpha * ...``)."""

    def plain(self) -> np.ndarray:
        """The caller's array this view stands for (a view of it where this one was
        derived from another, by reshape or a method)."""
        orig = self.__dict__.get("orig")
        return orig if orig is not None else self.view(_ndarray)

    def copy(self, order: str = "C") -> Any:  # type: ignore[override]
        """``ndarray.copy``: under a transform, a buffer whose writes are recorded."""
        return as_buffer(self.view(_ndarray).copy(order), _trace_for_caller(1, "copy"))

    def astype(self, dtype: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """``ndarray.astype``: a copy is a buffer as for ``copy()``."""
        base = self.view(_ndarray)
        out = base.astype(dtype, *args, **kwargs)
        if out is base or (out.base is not None and np.shares_memory(out, base)):
            return out
        return as_buffer(out, _trace_for_caller(1, "astype"))

    def __getitem__(self, key: Any) -> Any:
        return self.plain()[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self.plain()[key] = value

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        inputs = tuple(_plain(a) for a in inputs)
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(_plain(a) for a in out)
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        args = tuple(_strip_arg(a) for a in args)
        kwargs = {k: _strip_arg(v) for k, v in kwargs.items()}
        return func(*args, **kwargs)

    def __reduce__(self) -> Any:
        return self.view(_ndarray).__reduce__()


plain_operand(PlainInput, PlainInput.plain)


def _strip_arg(a: Any) -> Any:
    if isinstance(a, PlainInput):
        return a.plain()
    if type(a) in (list, tuple) and any(isinstance(b, PlainInput) for b in a):
        return type(a)(_plain(b) for b in a)
    return a


def plain_input(a: Any) -> Any:
    """A non-differentiated argument as the transformed function receives it: a
    floating-point ndarray with at least one axis as a ``PlainInput`` view."""
    if type(a) is _ndarray and a.ndim and a.dtype.kind in "fc":
        return _view(a)
    return a


def _view(a: np.ndarray) -> PlainInput:
    v = a.view(PlainInput)
    v.orig = a  # what meets traced values and library code (bind's rare branch)
    return v


# Closure cells and module globals holding plain arrays, replaced by PlainInput views
# while some transform of a function reading them runs: (id(holder), name) -> [holder,
# name, original, view, count] (a cell's name is None). Counted under a lock, like
# namespace.installed, so that two threads transforming functions that read the same
# array restore it once, when the last one finishes.
_held: dict[tuple[int, Any], list[Any]] = {}
_held_lock = threading.Lock()


def _get(holder: Any, name: Any) -> Any:
    return holder.cell_contents if name is None else holder.get(name)


def _set(holder: Any, name: Any, value: Any) -> None:
    if name is None:
        holder.cell_contents = value
    else:
        holder[name] = value


def _viewable(v: Any) -> bool:
    return type(v) is _ndarray and v.ndim > 0 and v.dtype.kind in "fc"


def hold_inputs(f: Any) -> list[Any] | None:
    """Make the floating-point arrays the transformed function ``f`` reads from its
    closure or its module's globals (by name, in its own code) ``PlainInput`` views, so
    that their ``copy()`` takes traced writes; the token for ``release_inputs`` (None
    when there is nothing to hold, the common case: no lock is taken)."""
    while type(f) is functools.partial:
        f = f.func
    code = getattr(f, "__code__", None)
    if code is None:
        return None
    places: list[tuple[Any, Any]] = []
    for c in f.__closure__ or ():
        try:
            if _viewable(c.cell_contents):
                places.append((c, None))
        except ValueError:  # an empty cell (a name assigned later)
            pass
    glob = f.__globals__
    for n in code.co_names:
        if _viewable(glob.get(n)):
            places.append((glob, n))
    if not places:
        return None
    mine = []
    with _held_lock:
        for holder, name in places:
            key = (id(holder), name)
            entry = _held.get(key)
            if entry is not None and entry[0] is holder:
                entry[4] += 1
                mine.append(entry)
                continue
            v = _get(holder, name)
            if not _viewable(v):
                continue
            view = _view(v)
            _set(holder, name, view)
            entry = _held[key] = [holder, name, v, view, 1]
            mine.append(entry)
    return mine


def release_inputs(mine: list[Any] | None) -> None:
    """Put back what ``hold_inputs`` replaced, when no other transform still holds it."""
    if not mine:
        return
    with _held_lock:
        for entry in mine:
            entry[4] -= 1
            if entry[4] == 0:
                holder, name, v, view = entry[:4]
                if _get(holder, name) is view:  # left as it is if f rebound it
                    _set(holder, name, v)
                del _held[(id(holder), name)]
