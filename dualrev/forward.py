"""Forward mode: the ``Dual`` value (primal, tangent) and the trace that propagates it."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import config
from .batching import Batched, add, scale
from .debug import check_output, in_rules, rules
from .errors import EscapedTracerError, NoDerivativeRule
from .primitive import Primitive, Trace, Tracer, as_dtype, bind, dtype_of, shape_of, zeros_as
from .tracer import DRAWING, TracedBase, enter_pass, exit_pass, note_finished, note_running


class ForwardTrace(Trace):
    """One forward-mode transform call: its nesting level.

    A fresh trace (and level) per transform call keeps nested derivatives apart
    (no perturbation confusion): a ``Dual`` only interacts with tangents of its own level.
    A batch of tangents (jacfwd) is a ``Batched`` tangent: the rules see one tangent.
    """

    __slots__ = ("level", "what")
    finished = False

    def __init__(self, level: int, what: str = "a forward-mode transform") -> None:
        self.level = level
        note_running(self)
        self.what = what  # the transform's name, for the escaped-tracer error
        if DRAWING[0] and type(self) is ForwardTrace:
            self.__class__ = _AnnouncedForwardTrace

    def finish(self) -> None:
        """The transform's function has returned: later uses of its values raise (see
        ``Tape.finish``)."""
        self.__class__ = FinishedForwardTrace
        note_finished(self)

    def constant(self, value: Any) -> Dual:
        """``value`` with a zero tangent (``Trace.constant``)."""
        dt = dtype_of(value)
        return Dual(value, zeros_as(shape_of(value), dt if dt.kind in "fc" else float, value),
                    self)

    def process(self, prim: Primitive, args: Any, params: dict[str, Any]) -> Any:
        level = self.level
        primals = []
        tangents = []
        for a in args:
            if type(a) is Dual and a._level == level:
                primals.append(a.primal)
                tangents.append(a.tangent)
            else:
                primals.append(a)
                tangents.append(None)
        if prim.custom is not None:  # a custom_vjp: its rules, not its body
            ans, out = prim.custom.forward(primals, tangents, params)
        else:
            ans = bind(prim, primals, params)
            out = tangent_out(prim, tangents, ans, primals, params)
        return ans if out is None else Dual(ans, out, self)


class _AnnouncedForwardTrace(ForwardTrace):
    """A forward trace made while a drawing records: ``process`` (the same steps as
    ``ForwardTrace.process``) announces its primal and tangent passes."""

    __slots__ = ()

    def process(self, prim: Primitive, args: Any, params: dict[str, Any]) -> Any:
        level = self.level
        primals = [a.primal if type(a) is Dual and a._level == level else a for a in args]
        tangents = [a.tangent if type(a) is Dual and a._level == level else None
                    for a in args]
        enter_pass(self, "primal")
        try:
            if prim.custom is not None:
                ans, out = prim.custom.forward(primals, tangents, params)
            else:
                ans = bind(prim, primals, params)
                exit_pass()
                enter_pass(self, "tangent")
                out = tangent_out(prim, tangents, ans, primals, params)
        finally:
            exit_pass()
        return ans if out is None else Dual(ans, out, self)


def tangent_out(prim: Primitive, tangents: list[Any], ans: Any, primals: list[Any],
                params: dict[str, Any]) -> Any:
    """The tangent of one operation's output from its arguments' (None where an argument
    carries none): the JVP rules summed, in the output's shape and precision; None when
    no tangent reaches the output."""
    if prim.jvp_joint is not None:
        out = prim.jvp_joint(tangents, ans, *primals, **params)
    else:
        rules = prim.jvps
        if rules is None:
            raise NoDerivativeRule(prim.name, "It has no JVP (forward-mode) rule.")
        partials = prim.fast_partials
        fast = prim.strategy  # (GENERAL, 0, where the shortcuts are off)
        out = None
        for i, t in enumerate(tangents):
            if t is None:
                continue
            rule = rules[i]
            if rule is None:
                continue
            if partials is not None:
                d = partials[i](ans, *primals)
                if type(t) is Batched and not isinstance(d, Tracer):
                    c = scale(t, d)  # a batch of tangents times a plain partial
                else:
                    c = t * d
            else:
                c = rule(t, ans, *primals, **params)
            if out is None:
                out = c
            elif fast and type(out) is Batched and type(c) is Batched:
                out = add(out, c)  # two batches of tangents: no interpreter between
            else:
                out = out + c
        if out is None:
            return None
        if prim.elementwise:
            want = shape_of(ans)
            if shape_of(out) != want:
                out = np.broadcast_to(out, want)
    if out is None:
        return None
    ta = type(ans)
    if ta is not float and ta is not np.float64 and (ta is not np.ndarray
                                                     or ans.dtype.char not in "dD"):
        out = _tangent_dtype(out, ans)
    elif ta is np.ndarray and type(out) is np.ndarray and out.dtype.char in "fF":
        # a float32 input to a function whose result NumPy/SciPy widens to float64
        out = out.astype(np.result_type(out.dtype, ans.dtype))
    return out


def _tangent_dtype(t: Any, ans: Any) -> Any:
    """``t`` in the dtype of a float32/complex64 output ``ans``: a rule computing in
    float64 must not widen the derivative (JAX keeps the primal's dtype)."""
    dt = dtype_of(ans)
    if dt.char in "dD" or dt.kind not in "fc":
        return t
    tk = dtype_of(t).kind
    if tk == "c" and dt.kind != "c":
        return t  # a complex tangent of a real value was asked for (jvp): keep it
    return as_dtype(t, dt)


class FinishedForwardTrace(ForwardTrace):
    """A forward trace whose transform has returned."""

    __slots__ = ()
    finished = True

    def process(self, prim: Primitive, args: Any, params: dict[str, Any]) -> Any:
        raise EscapedTracerError(self.what, prim.name)


class Dual(TracedBase):
    """A forward-mode traced value: ``primal`` and its ``tangent`` (same shape).

    Inside ``jvp``, ``jacfwd`` and ``hessian`` the differentiated arguments are ``Dual``
    numbers; every NumPy call on one computes the output's value and tangent at once (the
    primitive's JVP rules) and returns a new ``Dual``. They behave like the arrays they hold,
    and refuse conversion to plain values and in-place writes as ``Traced`` values do.
    Users do not usually create them: ``jvp`` does.

    Args:
        primal: the value (one nesting level down: a plain array, or a traced value of an
            outer transform).
        tangent: its tangent, of the primal's shape (a ``Batched`` batch of tangents in
            ``jacfwd``).
        trace: the ``ForwardTrace`` of the transform call (its level is the value's level).
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> def f(x):
        ...     print(repr(x))
        ...     return x ** 2
        >>> y, t = dr.jvp(f, (3.0,), (1.0,))
        Dual(primal=3.0, tangent=1.0)
        >>> print(y, t)
        9.0 6.0
    """

    __slots__ = ()  # tangent: a slot of Tracer

    def __init__(self, primal: Any, tangent: Any, trace: ForwardTrace) -> None:
        self.primal = primal
        self.tangent = tangent
        self._trace = trace
        self._level = trace.level

    def __repr__(self) -> str:
        return f"Dual(primal={self.primal!r}, tangent={self.tangent!r})"

    def _no_derivative_here(self) -> bool:
        # an exactly zero (plain) tangent (TracedBase._no_derivative_here)
        tan = self.tangent
        return tan is None or (not isinstance(tan, Tracer) and not np.any(tan))


# ------------------------------------------------------------------ the NaN debugging mode
def _checked_process(self: ForwardTrace, prim: Primitive, args: Any,
                     params: dict[str, Any]) -> Any:
    """``ForwardTrace.process`` while dualrev.debug_nans is on: the value checked as
    soon as it is computed, the tangent rules marked as such (their values are checked at
    the transform's result: see dualrev/debug.py)."""
    level = self.level
    primals = [a.primal if type(a) is Dual and a._level == level else a for a in args]
    tangents = [a.tangent if type(a) is Dual and a._level == level else None for a in args]
    checking = not in_rules()
    if prim.custom is not None:
        with rules():
            ans, out = prim.custom.forward(primals, tangents, params)
        if checking:
            check_output(prim, primals, ans)
    else:
        ans = bind(prim, primals, params)
        if checking:
            check_output(prim, primals, ans)
        with rules():
            out = tangent_out(prim, tangents, ans, primals, params)
    return ans if out is None else Dual(ans, out, self)


def _checked_announced_process(self: ForwardTrace, prim: Primitive, args: Any,
                               params: dict[str, Any]) -> Any:
    """``_AnnouncedForwardTrace.process`` (a drawing records) while dualrev.debug_nans
    is on: ``_checked_process`` inside the drawing's passes."""
    level = self.level
    primals = [a.primal if type(a) is Dual and a._level == level else a for a in args]
    tangents = [a.tangent if type(a) is Dual and a._level == level else None for a in args]
    checking = not in_rules()
    enter_pass(self, "primal")
    try:
        if prim.custom is not None:
            with rules():
                ans, out = prim.custom.forward(primals, tangents, params)
            if checking:
                check_output(prim, primals, ans)
        else:
            ans = bind(prim, primals, params)
            if checking:
                check_output(prim, primals, ans)
            exit_pass()
            enter_pass(self, "tangent")
            with rules():
                out = tangent_out(prim, tangents, ans, primals, params)
    finally:
        exit_pass()
    return ans if out is None else Dual(ans, out, self)


_PLAIN_PROCESS = ForwardTrace.process
_PLAIN_ANNOUNCED = _AnnouncedForwardTrace.process


@config.on_debug_nans
def _choose_debug(on: bool) -> None:
    # swapped in and out, so that the mode costs nothing while it is off
    ForwardTrace.process = _checked_process if on else _PLAIN_PROCESS  # type: ignore[method-assign]
    _AnnouncedForwardTrace.process = (  # type: ignore[method-assign]
        _checked_announced_process if on else _PLAIN_ANNOUNCED)
