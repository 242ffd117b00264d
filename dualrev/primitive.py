"""Primitives: one entry per operation, holding its NumPy implementation, its JVP and
VJP rules and its batching rule, and the single ``bind`` through which every traced call
goes.

Rule signatures (``g`` is a tangent or cotangent, ``ans`` the primitive's output, then the
primal positional arguments and the static keyword arguments)::

    jvp_rule(g, ans, *primals, **params)   # g: tangent of one argument
    vjp_rule(g, ans, *primals, **params)   # g: cotangent of the output
    batch_rule(args, batched, **params)    # args with a leading batch axis where batched

Rules are written for one example: a tangent has its primal's shape, a cotangent its
output's. Batches of them (``jacfwd`` pushes all basis tangents at once, ``jacrev`` pulls
all cotangents back at once, ``vmap`` maps a function) are the business of the batching
interpreter (batching.py), which runs a rule's NumPy calls on batched values through each
primitive's batching rule. Elementwise primitives need none (the machinery aligns a
leading batch axis for them).

Rules are written with ordinary NumPy calls, so they are differentiable by the same
machinery: higher derivatives come from nesting.
"""

from __future__ import annotations

import dis
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .errors import BatchedValueError, NoDerivativeRule

Rule = Callable[..., Any]


class Tracer:
    """Base of the traced value types (``Dual``, ``Traced``, ``Batched``); defined fully
    in tracer.py. ``primal`` is the value one level down; for a ``Batched`` value it holds
    the whole batch (one leading axis more than the value's own shape, ``_bdepth`` 1)."""

    __slots__ = ("primal", "_trace", "_level")
    _bdepth = 0


class Primitive:
    """One differentiable operation: implementation, JVP rules and VJP rules.

    ``jvps`` and ``vjps`` hold one rule per positional argument; ``None`` declares a zero
    derivative for that argument (a mask, an index). ``jvp_joint`` replaces the
    per-argument JVP rules with one rule taking all tangents (``None`` where absent).
    ``nondiff`` primitives (comparisons, floor, sign) have zero derivative everywhere:
    they run on the primal values and return plain results.

    Optional speed-ups, never needed for correctness: ``scalar_impl`` runs the operation
    on Python/NumPy float scalars (falling back to ``impl`` on arithmetic errors);
    ``partials`` (elementwise entries whose every rule is ``g * d(ans, *args)``) lets
    the machinery skip the rule wrapper; ``vjp_add(acc, g, ans, *primals, **params)``
    adds the VJP into a cotangent buffer the tape owns (or creates one when ``acc`` is
    None), returning NotImplemented where it does not apply; ``shape_only`` names the
    arguments (-1 for the output) whose VJP reads only their shape, so the tape keeps a
    shape instead of the array.
    """

    __slots__ = ("name", "impl", "jvps", "vjps", "jvp_joint", "elementwise", "nondiff",
                 "batch", "scalar_impl", "vjp_add", "shape_only", "partials", "body", "fwd",
                 "_keep_cache")

    def __init__(
        self,
        name: str,
        impl: Callable[..., Any],
        *,
        elementwise: bool = False,
        nondiff: bool = False,
        scalar_impl: Callable[..., Any] | None = None,
        shape_only: tuple[int, ...] = (),
    ) -> None:
        self.name = name
        self.impl = impl
        self.jvps: Sequence[Rule | None] | None = None
        self.vjps: Sequence[Rule | None] | None = None
        self.jvp_joint: Rule | None = None
        self.elementwise = elementwise
        self.nondiff = nondiff
        self.batch: Rule | None = None
        self.scalar_impl = scalar_impl
        self.vjp_add: Rule | None = None
        self.shape_only = frozenset(shape_only)
        # For elementwise entries defined by partial derivatives d(ans, *args), the
        # machinery multiplies by them directly (one call fewer per operation).
        self.partials: tuple[Rule, ...] | None = None
        # custom_vjp: forward mode traces ``body``; the tape runs ``fwd`` to get
        # (output, residuals) and hands the residuals to the VJP rule.
        self.body: Callable[..., Any] | None = None
        self.fwd: Callable[..., Any] | None = None
        self._keep_cache: dict[Any, tuple[Any, ...] | None] = {}

    def defjvp(self, *rules: Rule | None) -> Primitive:
        """Set one JVP rule per positional argument."""
        self.jvps = rules
        return self

    def defbatch(self, rule: Rule) -> Primitive:
        """Set the batching rule ``rule(args, batched, **params)``: ``batched[i]`` tells
        whether ``args[i]`` carries a leading batch axis; the result must carry one.
        Without a rule, elementwise primitives align the batch axis themselves and others
        are mapped by a Python loop over the batch (correct, slow)."""
        self.batch = rule
        return self

    def defjvp_joint(self, rule: Rule) -> Primitive:
        """Set one JVP rule ``rule(tangents, ans, *primals, **params)`` for all arguments."""
        self.jvp_joint = rule
        return self

    def keep_plan(self, traced: int | tuple[int, ...]) -> tuple[Any, ...] | None:
        """What the tape must keep for a VJP w.r.t. the ``traced`` argument positions:
        None to keep everything, else a tuple with one entry for the output and one per
        argument: True (keep), False (drop) or "shape" (keep a shape stand-in)."""
        plan = self._keep_cache.get(traced, 0)
        if plan == 0:
            positions = (traced,) if isinstance(traced, int) else traced
            plan = self._keep_cache[traced] = self._plan(positions)
        return plan

    def _plan(self, traced: tuple[int, ...]) -> tuple[Any, ...] | None:
        needed: set[int] = set()
        for pos in traced:
            reads = rule_reads(self.vjps[pos])  # type: ignore[index]
            if reads is None:
                return None
            needed |= reads
        # index 0 is the output (position -1), index k + 1 is argument k
        width = max(needed, default=-1) + 2
        return tuple(
            ("shape" if i - 1 in self.shape_only else True) if i - 1 in needed else False
            for i in range(width)
        )

    def defvjp(self, *rules: Rule | None) -> Primitive:
        """Set one VJP rule per positional argument."""
        self.vjps = rules
        self._keep_cache.clear()
        return self

    def defvjp_indexed(self, rule: Rule) -> Primitive:
        """Set one VJP rule ``rule(argpos, g, ans, *primals, **params)`` for variadic primitives."""
        self.vjps = _Indexed(rule)
        self._keep_cache.clear()
        return self

    def __call__(self, *args: Any, **params: Any) -> Any:
        return bind(self, args, params)

    def __repr__(self) -> str:
        return f"<dualrev primitive {self.name}>"


# How each instruction that touches a local variable (``dis.haslocal``/``dis.hasfree``)
# uses it, across CPython 3.10 to 3.14. Superinstructions (3.13: LOAD_FAST_LOAD_FAST,
# STORE_FAST_LOAD_FAST) name two variables; counting both as read only keeps more.
_READS = frozenset({
    "LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_AND_CLEAR", "LOAD_FAST_LOAD_FAST",
    "STORE_FAST_LOAD_FAST", "LOAD_FAST_BORROW", "LOAD_FAST_BORROW_LOAD_FAST_BORROW",
    "LOAD_DEREF", "LOAD_CLOSURE", "LOAD_CLASSDEREF", "LOAD_FROM_DICT_OR_DEREF", "MAKE_CELL",
})
_WRITES = frozenset({
    "STORE_FAST", "STORE_FAST_STORE_FAST", "STORE_FAST_MAYBE_NULL", "DELETE_FAST",
    "STORE_DEREF", "DELETE_DEREF",
})
_LOCAL_OPS = frozenset(dis.haslocal) | frozenset(dis.hasfree)


def _names_read(code: Any) -> set[str] | None:
    """The local and free variable names ``code`` and the code objects nested in it
    (comprehensions before 3.12, lambdas, inner functions) read; None if an instruction
    touches a variable in a way this table does not know (a newer interpreter)."""
    names: set[str] = set(code.co_cellvars)
    for ins in dis.get_instructions(code):
        if ins.opname in _READS:
            v = ins.argval
            names.update(v if isinstance(v, tuple) else (v,))
        elif ins.opcode in _LOCAL_OPS and ins.opname not in _WRITES:
            return None
    for const in code.co_consts:
        if inspect.iscode(const):
            inner = _names_read(const)
            if inner is None:
                return None
            names |= inner
    return names


def rule_reads(rule: Any) -> frozenset[int] | None:
    """Which of ``ans`` (-1) and the primal arguments (0, 1, ...) a VJP rule reads, found
    from its bytecode; None when that cannot be told (then the tape keeps everything).

    A rule built from a partial derivative ``d(ans, *args)`` names it in ``reads_from``.
    """
    target = getattr(rule, "reads_from", rule)
    skip = 0 if target is not rule else 1  # a rule's first parameter is the cotangent
    code = getattr(target, "__code__", None)
    if code is None or code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS):
        return None
    params = code.co_varnames[skip:code.co_argcount]
    loaded = _names_read(code)
    if loaded is None:
        return None
    return frozenset(i - 1 for i, name in enumerate(params) if name in loaded)


class _Indexed:
    """Per-argument rules of a variadic primitive, built from one rule taking the position."""

    __slots__ = ("rule",)

    def __init__(self, rule: Rule) -> None:
        self.rule = rule

    def __getitem__(self, i: int) -> Rule:
        rule = self.rule
        return lambda *a, **k: rule(i, *a, **k)


_SCALARS = (float, int, np.float64)


def bind(prim: Primitive, args: Sequence[Any], params: dict[str, Any]) -> Any:
    """Apply ``prim``: to the innermost trace among ``args`` if any is traced, else plainly."""
    top = None
    for a in args:
        if isinstance(a, Tracer) and (top is None or a._level > top._level):
            top = a
    if top is None:
        return apply_plain(prim, args, params)
    if prim.nondiff:
        # no derivative: drop the differentiating levels; a batch still has to be mapped
        args = [unwrap_derivatives(a) for a in args]
        top = None
        for a in args:
            if isinstance(a, Tracer) and (top is None or a._level > top._level):
                top = a
        if top is None:
            return prim.impl(*args, **params)
    for a in args:
        if type(a) in _SEQUENCES:  # rules index and transpose their arguments as arrays
            args = [as_array(a) for a in args]
            break
    return top._trace.process(prim, args, params)


_SEQUENCES = (list, tuple)


def as_array(x: Any) -> Any:
    """A Python list or tuple (an array-like argument, as NumPy accepts) as an ndarray;
    arrays, scalars and traced values unchanged."""
    return np.asarray(x) if type(x) in _SEQUENCES else x


def apply_plain(prim: Primitive, args: Sequence[Any], params: dict[str, Any]) -> Any:
    """Run ``prim`` on plain values: its scalar version on floats, else its NumPy one."""
    scalar = prim.scalar_impl
    if scalar is not None:
        for a in args:
            if type(a) not in _SCALARS:
                break
        else:
            try:
                return scalar(*args)
            except (ArithmeticError, ValueError):
                pass  # let NumPy give its inf/nan (and warning) instead
    return prim.impl(*args, **params)


def strip(x: Any) -> Any:
    """The plain value under all levels of tracing (used where derivatives are zero: an
    index, a mask, a branch). A batched value has no one plain value: that raises."""
    while isinstance(x, Tracer):
        if x._bdepth:
            raise BatchedValueError()
        x = x.primal
    return x


def concrete(x: Any) -> Any:
    """The plain values under every level, a batch included (all its elements at once):
    for a decision a rule may take for a whole batch, such as which of two exact forms
    to use."""
    while isinstance(x, Tracer):
        x = x.primal
    return x


def unwrap_derivatives(x: Any) -> Any:
    """``x`` without its differentiating levels (Dual, Traced), down to a plain value or
    a batched one."""
    while isinstance(x, Tracer) and not x._bdepth:
        x = x.primal
    return x


def dtype_of(x: Any) -> np.dtype:
    """The dtype of an array, scalar or traced value (batched ones too)."""
    t = type(x)
    if t is np.ndarray:
        return x.dtype
    while isinstance(x, Tracer):
        x = x.primal
    if type(x) in _SEQUENCES:  # (result_type would read a list as a dtype spec)
        return np.asarray(x).dtype
    return np.result_type(x)


# ---------------------------------------------------------------------------- registry
# NumPy's protocols hand dualrev a ufunc or a function object; these tables map it to a
# callable built from primitives (a Primitive itself, or a composite written in NumPy).

UFUNC_HANDLERS: dict[Any, Callable[..., Any]] = {}
FUNCTION_HANDLERS: dict[Any, Callable[..., Any]] = {}
#: what traced values' own methods need beyond NumPy's functions, filled by the
#: catalogue: "getitem" (x[idx]), "astype" (x.astype), "scipy_caller" (for errors)
METHODS: dict[str, Callable[..., Any]] = {}


def register_ufunc(ufunc: Any, handler: Callable[..., Any]) -> None:
    """Route calls of a NumPy/SciPy ufunc on traced values to ``handler``."""
    UFUNC_HANDLERS[ufunc] = handler


def register_function(func: Any, handler: Callable[..., Any] | None = None) -> Any:
    """Route a NumPy function (``__array_function__``) on traced values to ``handler``.

    ``handler`` receives the call's arguments unchanged. Usable as a decorator:
    ``@register_function(np.sum)``.
    """
    if handler is None:
        def deco(h: Callable[..., Any]) -> Callable[..., Any]:
            FUNCTION_HANDLERS[func] = h
            return h
        return deco
    FUNCTION_HANDLERS[func] = handler
    return handler


def qualified_name(func: Any) -> str:
    """``numpy.linalg.svd``-style name of a function or ufunc, for error messages."""
    mod = getattr(func, "__module__", None) or "numpy"
    name = getattr(func, "__name__", repr(func))
    if isinstance(func, np.ufunc) and mod == "numpy":
        return f"numpy.{name} (ufunc)"
    return f"{mod}.{name}"


def no_rule(func: Any, detail: str = "") -> NoDerivativeRule:
    """The error for a function without a rule."""
    return NoDerivativeRule(qualified_name(func), detail)


# ---------------------------------------------------------------------------- helpers

def shape_of(x: Any) -> tuple[int, ...]:
    """Shape of an array, scalar or traced value, cheaply."""
    t = type(x)
    if t is np.ndarray:
        return x.shape
    if t is float or t is int:
        return ()
    drop = 0  # batch axes (leading) are not part of a batched value's own shape
    while isinstance(x, Tracer):  # its primal's shape, without the property's call
        drop += x._bdepth
        x = x.primal
    s = getattr(x, "shape", None)
    if s is None:
        s = np.shape(x)
    return s[drop:] if drop else s


def ndim_of(x: Any) -> int:
    return len(shape_of(x))


def unbroadcast(c: Any, shape: tuple[int, ...]) -> Any:
    """Sum a cotangent of a broadcast shape back to ``shape``.

    This is the reverse of broadcasting: an input that was repeated along an axis gets
    the sum of the cotangents of its copies.
    """
    cs = shape_of(c)
    if cs == shape:
        return c
    if len(cs) < len(shape):  # a constant-like cotangent: spread it over the shape
        return np.broadcast_to(c, shape)
    lead = len(cs) - len(shape)
    if lead:
        c = np.sum(c, axis=tuple(range(lead)))
        cs = shape_of(c)
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and cs[i] != 1)
    if axes:
        c = np.sum(c, axis=axes, keepdims=True)
    return c


def normalize_axis(axis: Any, ndim: int, scalar_axis: bool = False) -> tuple[int, ...]:
    """``axis`` (None, int or tuple) as a sorted tuple of non-negative ints.

    ``scalar_axis``: NumPy's ufunc reductions (sum, prod, max, min) take axis 0 or -1 of a
    0-d array as the empty reduction; mean and var do not."""
    if axis is None:
        return tuple(range(ndim))
    if scalar_axis and ndim == 0 and axis in (0, -1, (0,), (-1,), [0], [-1]):
        return ()
    if isinstance(axis, (tuple, list)):
        axes = tuple(int(a) for a in axis)
    else:
        axes = (int(axis),)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(a, ndim)
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {axis!r}")
    return tuple(sorted(out))


class Shaped:
    """What the tape keeps of an array whose VJP needs only its shape and dtype."""

    __slots__ = ("shape", "dtype")

    def __init__(self, x: Any) -> None:
        self.shape = shape_of(x)
        self.dtype = getattr(x, "dtype", None)

    @property
    def ndim(self) -> int:
        return len(self.shape)


_REAL_SCALARS = (float, int, np.float64, np.float32)
_COMPLEX_SCALARS = (complex, np.complex128, np.complex64)


def is_complex(x: Any) -> bool:
    """Whether a value (array, scalar or traced) has a complex dtype; cheap for the
    common real cases."""
    t = type(x)
    if t is np.ndarray:
        return x.dtype.kind == "c"
    if t in _REAL_SCALARS:
        return False
    if t in _COMPLEX_SCALARS:
        return True
    return dtype_of(x).kind == "c"


def as_dtype(c: Any, dt: np.dtype) -> Any:
    """The tangent or cotangent ``c`` in the inexact dtype ``dt`` of its primal (a real
    primal takes the real part), differentiably when ``c`` is traced."""
    tc = type(c)
    if tc is np.ndarray:
        if c.dtype == dt:
            return c
        if c.dtype.kind == "c" and dt.kind != "c":
            c = c.real
        return c.astype(dt)
    if isinstance(c, Tracer):
        cd = dtype_of(c)
        if cd == dt:
            return c
        if cd.kind == "c" and dt.kind != "c":
            c = np.real(c)
        return METHODS["astype"](c, dt)
    v = np.asarray(c)
    if v.dtype.kind == "c" and dt.kind != "c":
        v = v.real
    return v.astype(dt)[()]
