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

from . import config
from .debug import check_output, in_rules
from .errors import BatchedValueError, EscapedTracerError

# the plain-value helpers live below the traces (the write machinery uses them); the
# catalogue's rules take them from here, with the rule helpers defined below
from .levels import (  # noqa: F401
    batch_size,
    batch_traces,
    is_batched,
    map_plain,
    materialize,
    on_plain_values,
    rebatch,
    stand_in,
    without_derivatives,
)
from .primitive import Primitive, Trace, Tracer, bind, concrete, shape_of
from .tracer import DRAWING, TracedBase, enter_pass, exit_pass, note_finished, note_running


class BatchTrace(Trace):
    """One batching transform call (a ``vmap``, or a ``jacfwd``/``jacrev`` pass): its
    nesting level and batch size."""

    __slots__ = ("level", "size", "what")
    finished = False

    def __init__(self, level: int, size: int, what: str = "vmap") -> None:
        self.level = level
        note_running(self)
        self.size = size
        self.what = what  # the transform's name, for the escaped-tracer error
        if DRAWING[0] and type(self) is BatchTrace:
            self.__class__ = _AnnouncedBatchTrace

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

    def constant(self, value: Any) -> Batched:
        """``value`` the same for every element of the batch (``Trace.constant``)."""
        return Batched(np.array(np.broadcast_to(concrete(value) if not isinstance(
            value, Tracer) else value, (self.size,) + tuple(shape_of(value)))), self)


_PLAIN_PROCESS = BatchTrace.process


def _checked_process(self: BatchTrace, prim: Primitive, args: Sequence[Any],
                     params: dict[str, Any]) -> Any:
    """``BatchTrace.process`` while dualrev.debug_nans is on: the batch of values
    checked as soon as it is computed (a report names the batch element)."""
    out = _PLAIN_PROCESS(self, prim, args, params)
    if not in_rules():
        level = self.level
        check_output(prim, [a.primal if type(a) is Batched and a._level == level else a
                            for a in args], out, batched=True)
    return out


@config.on_debug_nans
def _choose_debug(on: bool) -> None:
    # swapped in and out, so that the mode costs nothing while it is off
    BatchTrace.process = _checked_process if on else _PLAIN_PROCESS  # type: ignore[method-assign]


class _AnnouncedBatchTrace(BatchTrace):
    """A batch trace made while a drawing records: it announces its pass."""

    __slots__ = ()

    def process(self, prim: Primitive, args: Sequence[Any], params: dict[str, Any]) -> Any:
        enter_pass(self, "batched")
        try:
            return BatchTrace.process(self, prim, args, params)
        finally:
            exit_pass()


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
