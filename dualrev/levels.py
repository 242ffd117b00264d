"""What lies under a traced value's levels, for code that computes from plain values:
the plain value without the differentiating levels, the batches of ``vmap`` kept
(``without_derivatives``, ``on_plain_values``, ``rebatch``), and the small helpers batching
rules share (``materialize``, ``batch_size``).

Below the traces (layer 2): a batch level is recognised by its value's ``_bdepth`` and
rebuilt by its own trace's ``wrap`` (``BatchTrace.wrap``), so the write machinery and
the indexing primitives the traced values' methods run (inplace.py, at.py, indexing.py)
use these without importing batching.py, which re-exports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import BatchedValueError
from .primitive import Tracer, call_plain, dtype_of, shape_of, strip


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
    return x if inner is x.primal else x._trace.wrap(inner)


def batch_traces(x: Any) -> list[Any]:
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
        value = trace.wrap(value)
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
        if isinstance(a, Tracer) and a._trace is trace:
            # an empty batch: one element's shape and dtype, for the result's
            return a.primal[i] if i is not None else np.zeros(shape_of(a), dtype_of(a))
        return a

    size = trace.size
    outs = [func(*[pick(a, i) for a in args], **{k: pick(v, i) for k, v in kwargs.items()})
            for i in (range(size) if size else [None])]
    if any(isinstance(o, tuple) for o in outs):
        raise BatchedValueError(f"{name} (whose result's size depends on the values)")
    if not size:
        return trace.wrap(np.zeros((0,) + np.shape(outs[0]), np.result_type(outs[0])))
    try:
        stacked = np.stack(outs)
    except ValueError:
        raise BatchedValueError(f"{name} (whose result's size depends on the values)") from None
    return trace.wrap(stacked)
