"""Batching: the ``Batched`` value (one leading batch axis over a value of its own shape)
and the trace that maps primitives over that axis.

This is what lets every rule be written for one example. ``vmap`` maps a user's function;
``jacfwd`` pushes all basis tangents through a JVP as one batch and ``jacrev`` pulls all
basis cotangents back as one: in both, a rule's NumPy calls meet ``Batched`` tangents and
each primitive's batching rule says how the batch axis passes through it.

A ``Batched`` value holds the whole batch as its ``primal`` (axis 0 is the batch) and
reports the shape of one example. Batching rules receive those whole-batch values
(``args``) and which of them are batched, and return the whole-batch result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .errors import BatchedValueError, EscapedTracerError
from .primitive import Primitive, Tracer, bind, call_plain, dtype_of, shape_of, strip
from .tracer import TracedBase, note_finished, note_running


class BatchTrace:
    """One batching transform call (a ``vmap``, or a ``jacfwd``/``jacrev`` pass): its
    nesting level and batch size."""

    __slots__ = ("level", "size", "what")
    finished = False

    def __init__(self, level: int, size: int, what: str = "vmap") -> None:
        self.level = level
        note_running(self)
        self.size = size
        self.what = what  # the transform's name, for the escaped-tracer error

    def finish(self) -> None:
        """The mapped function has returned: later uses of its values raise."""
        self.__class__ = FinishedBatchTrace
        note_finished(self)

    def process(self, prim: Primitive, args: Sequence[Any], params: dict[str, Any]) -> Any:
        level = self.level
        raw = []
        batched = []
        for a in args:
            if type(a) is Batched and a._level == level:
                raw.append(a.primal)
                batched.append(True)
            else:
                raw.append(a)
                batched.append(False)
        rule = prim.batch
        if rule is not None:
            out = rule(raw, tuple(batched), **params)
        elif prim.elementwise:
            out = batch_elementwise(prim, raw, batched, params)
        else:
            out = batch_by_loop(prim, raw, batched, params, self.size)
        return Batched(out, self)

    def wrap(self, value: Any) -> Batched:
        """``value`` (whole batch, batch axis first) as a batched value of this trace."""
        return Batched(value, self)


class FinishedBatchTrace(BatchTrace):
    """A batch trace whose transform has returned."""

    __slots__ = ()
    finished = True

    def process(self, prim: Primitive, args: Sequence[Any], params: dict[str, Any]) -> Any:
        raise EscapedTracerError(self.what, prim.name)


class Batched(TracedBase):
    """A batch of values: ``primal`` holds them all (batch axis first); the value's own
    shape (``.shape``) is that of one element."""

    __slots__ = ()
    _bdepth = 1

    def __init__(self, value: Any, trace: BatchTrace) -> None:
        self.primal = value
        self._trace = trace
        self._level = trace.level

    def __bool__(self) -> bool:
        raise BatchedValueError("`if`/`while`/bool() on a batched value")

    # An index made of a batch is a per-element choice, not a lost derivative: the
    # conversion error's advice (keep the value traced) would mislead under vmap.
    # (float() keeps the conversion error, which names math.* calls and their rewrite.)
    def __index__(self) -> int:
        raise BatchedValueError("a batched value used as an index or a slice bound "
                                "(x[i:], range(i), np.roll(x, i))")

    def __int__(self) -> int:
        raise BatchedValueError("int() of a batched value")

    def __repr__(self) -> str:
        return f"Batched({self.primal!r})"


# ------------------------------------------------------------------ generic rules
def batch_elementwise(prim: Primitive, args: list[Any], batched: Sequence[bool],
                      params: dict[str, Any]) -> Any:
    """Elementwise primitives: line the batch axis up in front of the broadcast shape
    (unit axes after it where a batched argument has fewer axes than the result)."""
    shapes = [a.shape if type(a) is np.ndarray else shape_of(a) for a in args]
    nd = 0
    for s, b in zip(shapes, batched, strict=True):
        k = len(s) - b
        if k > nd:
            nd = k
    for s, b in zip(shapes, batched, strict=True):
        if b and len(s) != nd + 1:
            break
    else:
        return bind(prim, args, params)  # the batch axis already in front of them all
    new = []
    for a, b in zip(args, batched, strict=True):
        if b:
            s = shape_of(a)
            k = nd + 1 - len(s)
            if k:
                a = np.reshape(a, s[:1] + (1,) * k + s[1:])
        new.append(a)
    return bind(prim, new, params)


def batch_by_loop(prim: Primitive, args: list[Any], batched: Sequence[bool],
                  params: dict[str, Any], size: int) -> Any:
    """Any primitive, by a Python loop over the batch: correct for every primitive, and
    the reason a batching rule is worth writing for the common ones."""
    if size == 0:  # nothing to run: the shape of one result, from zeros
        one = bind(prim, [np.zeros(shape_of(a)[1:], _dtype(a)) if b else a
                          for a, b in zip(args, batched, strict=True)], params)
        return np.zeros((0,) + shape_of(one), _dtype(one))
    outs = [bind(prim, [a[i] if b else a for a, b in zip(args, batched, strict=True)], params)
            for i in range(size)]
    return np.stack(outs)


def _dtype(x: Any) -> Any:
    while isinstance(x, Tracer):
        x = x.primal
    return np.result_type(x)


# ------------------------------------------------------------------ helpers for rules
def batch_size(args: Sequence[Any], batched: Sequence[bool]) -> int:
    """The batch size, read off the first batched argument."""
    for a, b in zip(args, batched, strict=True):
        if b:
            return shape_of(a)[0]
    raise ValueError("no batched argument")


def materialize(args: Sequence[Any], batched: Sequence[bool]) -> list[Any]:
    """Every argument with the batch axis in front (unbatched ones broadcast to it)."""
    n = batch_size(args, batched)
    return [a if b else np.broadcast_to(a, (n,) + tuple(shape_of(a)))
            for a, b in zip(args, batched, strict=True)]


def shift_axes(axis: Any, by: int = 1) -> Any:
    """Axis parameters (an int, a tuple of ints, None) of a value that gained ``by``
    leading axes: non-negative ones move up; None (all axes) is left to the caller."""
    if axis is None:
        return None
    if isinstance(axis, tuple):
        return tuple(a + by if a >= 0 else a for a in axis)
    return axis + by if axis >= 0 else axis


def leading_axis_rule(prim: Primitive, *axis_params: str,
                      materialize_all: bool = True) -> Callable[..., Any]:
    """The batching rule of a primitive whose implementation maps over extra leading
    axes once the named axis parameters (normalised, non-negative) are shifted past the
    batch axis: every argument gets the batch axis (unbatched ones are broadcast)."""

    def rule(args: list[Any], batched: tuple[bool, ...], **params: Any) -> Any:
        if materialize_all and not all(batched):
            args = materialize(args, batched)
        for name in axis_params:
            params[name] = shift_axes(params[name])
        return bind(prim, args, params)

    return rule


def stacked_rule(prim: Primitive) -> Callable[..., Any]:
    """The batching rule of a primitive of one argument that already maps over leading
    stack axes (the numpy.linalg convention: ``...ij``): the batch is one more."""

    def rule(args: list[Any], batched: tuple[bool, ...], **params: Any) -> Any:
        return bind(prim, args, params)

    return rule


def map_plain(func: Any, args: Sequence[Any], kwargs: dict[str, Any], name: str) -> Any:
    """``func`` (a function of plain values, with no derivative) on arguments some of which
    are batched: called once per batch element by a Python loop, the results stacked into
    a batched value. Results whose size depends on the values (nonzero) cannot be.

    Derivative levels are dropped first (``func`` has no derivative), so a batch under a
    tape or a dual number (``vmap(grad(f))``) is mapped too; ``func`` may meet batched
    values of an outer ``vmap`` in its elements, and maps over those in turn."""
    args = [without_derivatives(a) for a in args]
    kwargs = {k: without_derivatives(v) for k, v in kwargs.items()}
    top: Any = None
    for a in list(args) + list(kwargs.values()):
        # what is left of a traced argument is a chain of batched values, the innermost
        # transform's (the highest level) outermost
        if isinstance(a, Tracer) and (top is None or a._level > top._level):
            top = a
    if top is None:
        raise ValueError("no batched argument")
    trace = top._trace

    def pick(a: Any, i: int | None) -> Any:
        if type(a) is Batched and a._trace is trace:
            # an empty batch: one element's shape and dtype, for the result's
            return a.primal[i] if i is not None else np.zeros(shape_of(a), dtype_of(a))
        return a

    size = trace.size
    outs = [func(*[pick(a, i) for a in args], **{k: pick(v, i) for k, v in kwargs.items()})
            for i in (range(size) if size else [None])]
    if any(isinstance(o, tuple) for o in outs):
        raise BatchedValueError(f"{name} (whose result's size depends on the values)")
    if not size:
        return Batched(np.zeros((0,) + np.shape(outs[0]), np.result_type(outs[0])), trace)
    try:
        stacked = np.stack(outs)
    except ValueError:
        raise BatchedValueError(f"{name} (whose result's size depends on the values)") from None
    return Batched(stacked, trace)


def scale(g: Any, d: Any) -> Any:
    """``g * d`` for a batched tangent or cotangent ``g`` and a plain partial ``d`` (the
    elementwise rules' product), computed on the whole batch at once: the shortcut the
    forward and reverse passes take past the interpreter (dualrev.config)."""
    raw = g.primal
    if type(raw) is np.ndarray:
        s = raw.shape
        k = (d.ndim if type(d) is np.ndarray else len(shape_of(d))) + 1 - len(s)
        if k > 0:  # d has more axes than one element of g: unit axes after the batch axis
            raw = raw.reshape(s[:1] + (1,) * k + s[1:])
        return Batched(raw * d, g._trace)
    s = shape_of(raw)
    k = len(shape_of(d)) + 1 - len(s)
    if k > 0:
        raw = np.reshape(raw, s[:1] + (1,) * k + s[1:])
    return Batched(raw * d, g._trace)


def add(a: Batched, b: Batched) -> Any:
    """``a + b`` for two batched tangents or cotangents (the sum of a rule's terms),
    on the whole batch at once when they are plain arrays of one trace with as many axes
    (the batch axes line up), else by the interpreter."""
    ra, rb = a.primal, b.primal
    if (a._trace is b._trace and type(ra) is np.ndarray and type(rb) is np.ndarray
            and ra.ndim == rb.ndim):
        return Batched(ra + rb, a._trace)
    return a + b


# ------------------------------------------------------------------ plain values
# Handlers take decisions and compute constants (a shift, a mask, a pivot order, a dtype)
# on plain values. Under vmap those values are batched: these helpers keep the batch.
def without_derivatives(x: Any) -> Any:
    """``x`` with every differentiating level (Dual, Traced) dropped and its batch levels
    kept: its plain value, or under ``vmap`` the batch of plain values (``strip`` refuses
    those). For values that steer a computation without carrying a derivative."""
    while isinstance(x, Tracer) and not x._bdepth and not x._staged:
        x = x.primal
    if not isinstance(x, Tracer) or x._staged:
        return x
    inner = without_derivatives(x.primal)
    return x if inner is x.primal else Batched(inner, x._trace)


def batch_traces(x: Any) -> list[BatchTrace]:
    """The batch traces of ``x``'s levels, the innermost transform's (outermost) first."""
    out = []
    while isinstance(x, Tracer):
        if x._bdepth:
            out.append(x._trace)
        x = x.primal
    return out


def rebatch(value: Any, like: Any) -> Any:
    """``value``, a plain array computed from ``concrete(like)`` (every batch axis of
    ``like`` in front, the outermost transform's first), as a value batched like ``like``
    (no derivative): a whole-batch NumPy call's result, mapped back to the elements."""
    for trace in reversed(batch_traces(like)):
        value = Batched(value, trace)
    return value


def stand_in(x: Any) -> Any:
    """A plain value with ``x``'s dtype and (one element's) shape, for NumPy's dtype and
    shape logic: ``x``'s own plain value where it has one, zeros for a batched ``x``."""
    try:
        return strip(x)
    except BatchedValueError:
        return np.zeros(shape_of(x), dtype_of(x))


def is_batched(x: Any) -> bool:
    """Whether ``x`` carries a batch level (under ``vmap``) at any depth."""
    while isinstance(x, Tracer):
        if x._bdepth:
            return True
        x = x.primal
    return False


def on_plain_values(func: Any, args: Sequence[Any], kwargs: dict[str, Any] | None = None,
                    name: str = "") -> Any:
    """``func(*args, **kwargs)`` on the plain values under any tracing (it carries no
    derivative); batched arguments are mapped over, one call per batch element."""
    kwargs = kwargs or {}
    args = [without_derivatives(a) for a in args]
    kwargs = {k: without_derivatives(v) for k, v in kwargs.items()}
    if not any(is_batched(a) for a in list(args) + list(kwargs.values())):
        return call_plain(func, args, kwargs)  # (a replay's staged values: recorded)
    return map_plain(lambda *a, **k: on_plain_values(func, a, k, name), args, kwargs,
                     name or getattr(func, "__name__", "a function"))
