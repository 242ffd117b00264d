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

import inspect
import sys
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import config
from .diagnose import user_frame
from .errors import BatchedValueError, DualrevError, InPlaceError, NoDerivativeRule, NotSavedError

Rule = Callable[..., Any]
# A ``saves`` declaration: one string for every VJP rule, or one per rule (see Primitive).
Saves = str | Sequence[str | None]


class Tracer:
    """Base of the traced value types (``Dual``, ``Traced``, ``Batched``); defined fully
    in tracer.py. ``primal`` is the value one level down; for a ``Batched`` value it holds
    the whole batch (one leading axis more than the value's own shape, ``_bdepth`` 1)."""

    # Every traced type has the same slots, so that an in-place write can turn a value
    # into one of another type (a buffer made at an outer level written with a value of
    # an inner transform; dualrev/inplace.py): ``tangent`` is a Dual's, ``_index`` a
    # Traced's; ``_base``/``_views`` link a view (basic indexing, reshape, ...) and its
    # base, left unset (no cost) on every other value; ``_array0d`` marks a 0-d value
    # that stands for a 0-d array rather than a NumPy scalar (see inplace.is_scalar_like).
    __slots__ = ("primal", "_trace", "_level", "tangent", "_index", "_base", "_views",
                 "_array0d", "__weakref__")
    _bdepth = 0
    # A value of a dualrev.replay recording (dualrev/staging.py's Staged) or of a
    # sparsity detection (dualrev/sparsity.py's Pattern): a value level, not a
    # derivative level. The loops that drop derivative levels stop at it, and
    # strip/concrete reaching it record a guard (``freeze``).
    _staged = False


#: pull strategies (``Primitive.strategy``), see reverse.py's walker
GENERAL, RULE, PARTIALS = 0, 1, 2


class Primitive:
    """One differentiable operation: implementation, JVP rules and VJP rules.

    ``jvps`` and ``vjps`` hold one rule per positional argument; ``None`` declares a zero
    derivative for that argument (a mask, an index). ``jvp_joint`` replaces the
    per-argument JVP rules with one rule taking all tangents (``None`` where absent).
    ``nondiff`` primitives (comparisons, floor, sign) have zero derivative everywhere:
    they run on the primal values and return plain results. Rules take the tangent (JVP)
    or output cotangent (VJP) ``g``, the output ``ans``, then the primal arguments and the
    static keyword parameters; they are set with ``defjvp(*rules)``,
    ``defjvp_joint(rule)``, ``defvjp(*rules, saves=...)``, ``defvjp_indexed(rule)`` and
    ``defbatch(rule)`` (each returns the primitive, so they chain). Calling the primitive,
    ``prim(*args, **params)``, applies it to plain or traced values; route a NumPy function
    to it with ``register_function`` / ``register_ufunc``. See docs/extending.md.

    **What the tape keeps** is declared with the VJP rules, ``defvjp(*rules, saves=...)``
    (``elementwise(..., saves=...)`` in the catalogue): which of ``ans`` and the
    positional arguments each rule reads, so the tape keeps those and lets the others
    die as early as in plain NumPy. Static keyword parameters are always kept:

        times.defvjp(lambda g, ans, x, y: g * y, lambda g, ans, x, y: g * x,
                     saves=("y", "x"))              # one string per rule, in order
        exp.defvjp(lambda g, ans, x: g * ans, saves="ans")   # one string for all rules
        total.defvjp(lambda g, ans, x, axis: spread(g, x.shape, axis), saves="x.shape")

    A string lists names separated by spaces: ``ans``, or a positional argument by the
    name the rule gives it; ``name.shape`` keeps only a ``Shaped`` stand-in (shape and
    dtype: ``shape_of``, ``ndim_of``, ``.shape``, ``.ndim``, ``.dtype`` work on it);
    ``""`` keeps nothing. The entry for a ``None`` rule is ignored. When several
    arguments are differentiated the tape keeps the union of their rules' declarations.
    Without ``saves`` the tape keeps everything, which is always correct (custom rules
    and ``defvjp_indexed`` primitives do so). A rule that reads a value its declaration
    does not keep gets a ``NotSaved`` stand-in, and any use of it raises
    ``NotSavedError``: a wrong declaration fails loudly instead of computing with a
    missing value. ``vjp_add`` and ``partials`` must read only what the rules declare.

    Optional speed-ups, never needed for correctness: ``scalar_impl`` runs the operation
    on Python/NumPy float scalars (falling back to ``impl`` on arithmetic errors);
    ``partials`` (elementwise entries whose every rule is ``g * d(ans, *args)``) lets
    the machinery skip the rule wrapper; ``vjp_add(acc, g, ans, *primals, **params)``
    adds the VJP of argument ``vjp_add_arg`` (0 unless set) into a cotangent buffer the
    tape owns (or creates one when ``acc`` is None), returning NotImplemented where it
    does not apply; with ``vjp_add_owned`` set it also gets ``g_owned=``: whether ``g``
    is a buffer the backward pass made and nobody else holds, which it may write into and
    return.

    Args:
        name: the operation's name, as error messages and ``dualrev.graph`` show it.
        impl: the implementation on plain values, ``impl(*args, **params)``.
        elementwise: the operation maps elements to elements with broadcasting (a ufunc):
            dualrev then handles broadcasting of the rules and batching itself.
        nondiff: the derivative is zero everywhere; traced arguments are stripped and the
            result is plain.
        scalar_impl: an optional fast path on Python/NumPy float scalars.
        key: the primitive's portable identity, under which a saved program
            (``dualrev.save_program``) names it and ``dualrev.load_program`` finds it
            again: a string unique in the process (``"mypkg.times"``); the process that
            loads must have declared it (imported the module). dualrev's own primitives
            take their name as key unless they give one; a primitive created without a
            key after dualrev's import (a user's, a ``custom_jvp``'s) has none and a
            program using it cannot be saved (``ProgramNotPortable``).
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> times = dr.Primitive("times", np.multiply, elementwise=True)
        >>> _ = times.defjvp(lambda g, ans, x, y: g * y, lambda g, ans, x, y: g * x)
        >>> _ = times.defvjp(lambda g, ans, x, y: g * y, lambda g, ans, x, y: g * x,
        ...                  saves=("y", "x"))
        >>> print(times(np.array([1.0, 2.0]), 3.0))
        [3. 6.]
        >>> print(dr.grad(lambda x: np.sum(times(x, np.sin(x))))(np.array([0.0, 1.0])))
        [0.       1.381773]
    """

    __slots__ = ("name", "impl", "jvps", "vjps", "jvp_joint", "elementwise", "nondiff",
                 "batch", "_scalar_impl", "_vjp_add", "vjp_add_arg", "vjp_add_owned",
                 "saves", "_partials", "_plans", "pattern",
                 # chosen by _declare (the shortcuts switch and the declarations above):
                 "strategy", "scatter", "fast_partials", "fast_scalar", "key", "__weakref__")

    # A custom_vjp primitive (custom.py) sets this to its decorator object: the tape
    # runs its ``on_tape`` (fwd: output and residuals), forward mode its ``forward``
    # (fwd, and the tangent from the transposed bwd), never the function's body.
    custom: Any = None

    def __init__(
        self,
        name: str,
        impl: Callable[..., Any],
        *,
        elementwise: bool = False,
        nondiff: bool = False,
        scalar_impl: Callable[..., Any] | None = None,
        key: str | None = None,
    ) -> None:
        self.name = name
        self.key: str | None = None
        if key is not None or _DECLARING:
            declare_key(self, name if key is None else key)
        self.impl = impl
        self.jvps: Sequence[Rule | None] | None = None
        self.vjps: Sequence[Rule | None] | None = None
        self.jvp_joint: Rule | None = None
        self.elementwise = elementwise
        self.nondiff = nondiff
        self.batch: Rule | None = None
        self._scalar_impl = scalar_impl
        self._vjp_add: Rule | None = None
        self.vjp_add_arg = 0
        self.vjp_add_owned = False
        # Per VJP rule, the positions (-1: ans) it reads whole and those whose shape
        # alone it reads; None: keep everything. Set by defvjp's ``saves``.
        self.saves: tuple[tuple[frozenset[int], frozenset[int]], ...] | None = None
        # For elementwise entries defined by partial derivatives d(ans, *args), the
        # machinery multiplies by them directly (one call fewer per operation).
        self._partials: tuple[Rule, ...] | None = None
        self._plans: dict[Any, tuple[Any, ...]] = {}
        #: the dependency-pattern rule (``defpattern``), or None: elementwise entries
        #: then pair elements after broadcasting, others fall back to dense
        self.pattern: Rule | None = None
        #: how the backward pass pulls a cotangent through this primitive: GENERAL
        #: (the VJP rule, then fitted to the argument), RULE (the same, with the
        #: float64 results' checks inline) or PARTIALS (the cotangent times the partial
        #: derivative); chosen by ``_declare``, never per call
        self.strategy = GENERAL
        #: ``vjp_add``, ``partials`` and ``scalar_impl`` where the shortcuts are on,
        #: else None: what the hot paths read
        self.scatter: Rule | None = None
        self.fast_partials: tuple[Rule, ...] | None = None
        self.fast_scalar: Callable[..., Any] | None = None
        self._declare(config.SHORTCUTS)
        _DECLARED.add(self)

    # The optional speed-ups are declarations: setting one chooses the strategies again.
    @property
    def partials(self) -> tuple[Rule, ...] | None:
        """The partial derivatives ``d(ans, *args)`` of an elementwise primitive whose
        every VJP rule is ``g * d``, or None; setting them chooses the PARTIALS
        strategy."""
        return self._partials

    @partials.setter
    def partials(self, value: tuple[Rule, ...] | None) -> None:
        self._partials = value
        self._declare(config.SHORTCUTS)

    @property
    def vjp_add(self) -> Rule | None:
        """``vjp_add(acc, g, ans, *primals, **params)``: the VJP of argument
        ``vjp_add_arg`` added into a buffer the backward pass owns (see the class
        docstring), or None."""
        return self._vjp_add

    @vjp_add.setter
    def vjp_add(self, value: Rule | None) -> None:
        self._vjp_add = value
        self._declare(config.SHORTCUTS)

    @property
    def scalar_impl(self) -> Callable[..., Any] | None:
        """The operation on Python/NumPy float scalars, or None."""
        return self._scalar_impl

    @scalar_impl.setter
    def scalar_impl(self, value: Callable[..., Any] | None) -> None:
        self._scalar_impl = value
        self._declare(config.SHORTCUTS)

    def _declare(self, shortcuts: bool) -> None:
        """Choose the strategies the hot paths read, from the declarations and the
        shortcuts switch: run when a speed-up is set and when ``config.set_shortcuts``
        turns the switch (the plain path everywhere when it is off)."""
        partials = self._partials if shortcuts else None
        self.fast_partials = partials
        self.scatter = self._vjp_add if shortcuts else None
        self.fast_scalar = self._scalar_impl if shortcuts else None
        self.strategy = (GENERAL if not shortcuts else PARTIALS if partials is not None
                         else RULE)

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

    def defpattern(self, rule: Rule) -> Primitive:
        """Set the dependency-pattern rule ``rule(deps, ans, *primals, **params)`` that
        structural sparsity detection (dualrev/sparsity.py) runs: ``deps[i]`` is argument
        ``i``'s pattern, a boolean ``scipy.sparse.csr_matrix`` with one row per element
        (C order) and one column per input element, or None for an argument that is a
        constant; the result is the output's pattern (one row per element of ``ans``), or
        None where it depends on no input. The family helpers are in
        dualrev/pattern_rules.py. Without a rule, an elementwise primitive pairs the
        elements after broadcasting and any other one makes each output element depend
        on every input element its arguments depend on (dense), with a note."""
        self.pattern = rule
        return self

    def defjvp_joint(self, rule: Rule) -> Primitive:
        """Set one JVP rule ``rule(tangents, ans, *primals, **params)`` for all arguments."""
        self.jvp_joint = rule
        return self

    def keep_plan(self, traced: int | tuple[int, ...]) -> tuple[Any, ...] | None:
        """What the tape keeps for a VJP w.r.t. the ``traced`` argument positions: None to
        keep everything (no ``saves`` declaration), else a tuple with one entry for the
        output and one per argument: True (keep it), ``Shaped`` (keep a shape stand-in)
        or the ``NotSaved`` stand-in to keep instead."""
        if self.saves is None:
            return None
        plan = self._plans.get(traced)
        if plan is None:
            positions = (traced,) if isinstance(traced, int) else traced
            plan = self._plans[traced] = self._plan(positions)
        return plan

    def _plan(self, traced: tuple[int, ...]) -> tuple[Any, ...]:
        whole: set[int] = set()
        shape: set[int] = set()
        for pos in traced:
            w, s = self.saves[pos]  # type: ignore[index]
            whole |= w
            shape |= s

        def entry(i: int) -> Any:
            if i in whole:
                return True
            return Shaped if i in shape else NotSaved(self.name, i)

        # index 0 is the output (position -1), index k + 1 is argument k
        return tuple(entry(i) for i in range(-1, len(self.saves)))  # type: ignore[arg-type]

    def defvjp(self, *rules: Rule | None, saves: Saves | None = None) -> Primitive:
        """Set one VJP rule per positional argument; ``saves`` declares what they read
        (see the class docstring; without it the tape keeps everything)."""
        self.vjps = rules
        self.saves = None if saves is None else parse_saves(self.name, saves, rules)
        self._plans.clear()
        return self

    def defvjp_indexed(self, rule: Rule) -> Primitive:
        """Set one VJP rule ``rule(argpos, g, ans, *primals, **params)`` for variadic
        primitives (the tape keeps everything for them)."""
        self.vjps = _Indexed(rule)
        self.saves = None
        self._plans.clear()
        return self

    def __call__(self, *args: Any, **params: Any) -> Any:
        return bind(self, args, params)

    def __repr__(self) -> str:
        return f"<dualrev primitive {self.name}>"


# Every primitive, so that the shortcuts switch re-declares them all (weakly: a
# custom_vjp's primitive dies with its function).
_DECLARED: weakref.WeakSet[Primitive] = weakref.WeakSet()


@config.on_shortcuts
def _redeclare(shortcuts: bool) -> None:
    for prim in list(_DECLARED):
        prim._declare(shortcuts)


def parse_saves(name: str, saves: Saves, rules: Sequence[Rule | None],
                skip: int = 1) -> tuple[tuple[frozenset[int], frozenset[int]], ...]:
    """A ``saves`` declaration (see ``Primitive``) as, per rule, the positions it reads
    whole and those it reads only the shape of (-1 is ``ans``, k argument k).

    Argument names are those of each rule's own parameters: after the cotangent (``skip``
    leading parameters: 1 for ``rule(g, ans, *primals)``, 0 for an elementwise partial
    ``d(ans, *primals)``) come ``ans`` and then one per rule. Raises ValueError on a name
    that is not ``ans`` or a positional argument (a static parameter is always kept)."""
    n = len(rules)
    entries = (saves,) * n if isinstance(saves, str) else tuple(saves)
    if len(entries) != n:
        raise ValueError(f"{name}: saves= has {len(entries)} entries for {n} VJP rules")
    out = []
    for pos, (rule, entry) in enumerate(zip(rules, entries, strict=True)):
        whole: set[int] = set()
        shape: set[int] = set()
        if rule is None:
            if entry and not isinstance(saves, str):
                raise ValueError(f"{name}: saves= declares {entry!r} for argument {pos}, "
                                 "whose rule is None (a zero derivative reads nothing)")
        elif entry:
            names = _argument_names(name, rule, skip, n)
            for token in entry.replace(",", " ").split():
                arg, _, part = token.partition(".")
                if arg not in names or part not in ("", "shape"):
                    raise ValueError(
                        f"{name}: saves= names {token!r}; the rule for argument {pos} takes "
                        f"{sorted(names, key=names.__getitem__)} (ans and the positional "
                        "arguments), each optionally with .shape")
                (shape if part else whole).add(names[arg])
        out.append((frozenset(whole), frozenset(shape - whole)))
    return tuple(out)


def _argument_names(name: str, rule: Rule, skip: int, n: int) -> dict[str, int]:
    """Position (-1: ans) of each name ``rule`` gives ``ans`` and the ``n`` positional
    arguments, from its signature (``ans`` always names the output)."""
    try:
        params = inspect.signature(rule).parameters.values()
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: saves= names arguments, but a rule has no signature "
                         "to find them in") from e
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    positional = [p.name for p in params if p.kind in kinds][skip:skip + 1 + n]
    names = {arg: k - 1 for k, arg in enumerate(positional)}
    names["ans"] = -1
    return names


#: every primitive with a portable identity, by its key (filled as primitives are declared)
PRIMITIVES: dict[str, Primitive] = {}
# True while dualrev declares its own primitives (until dualrev/__init__.py has imported
# its modules): then a primitive without key= takes its name as key, and two primitives
# with one key are an error to resolve at the declaration (key=).
_DECLARING = True


def declare_key(prim: Primitive, key: str) -> None:
    """Give ``prim`` the portable identity ``key`` (see ``Primitive``'s ``key``).

    While dualrev declares its catalogue a key taken twice raises ValueError; later a
    second declaration (a user's module run again) takes the key over: the earlier
    primitive is no longer found by it, and a program using it cannot be saved."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"a primitive's key must be a non-empty string, got {key!r}")
    old = PRIMITIVES.get(key)
    if old is not None and old is not prim:
        if _DECLARING:
            raise ValueError(f"primitives {old.name!r} and {prim.name!r} both declare the "
                             f"key {key!r}: give one of them another key= at its declaration")
    PRIMITIVES[key] = prim
    prim.key = key


def catalogue_declared() -> None:
    """End dualrev's own declarations (dualrev/__init__.py calls it once its modules are
    imported): from now on only a primitive given ``key=`` has a portable identity."""
    global _DECLARING
    _DECLARING = False


class NotSaved:
    """What the tape hands a VJP rule in place of a value its primitive's ``saves``
    declaration does not keep. Any use of it raises ``NotSavedError`` (None would let
    some rules compute silently: ``np.where(None, g, 0)`` is all zeros)."""

    __slots__ = ("prim", "position")

    def __init__(self, prim: str, position: int) -> None:
        self.prim = prim
        self.position = position

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        what = "ans" if self.position < 0 else f"argument {self.position}"
        raise NotSavedError(self.prim, what)

    def __getattr__(self, attr: str) -> Any:
        self._fail()

    def __repr__(self) -> str:
        what = "ans" if self.position < 0 else f"argument {self.position}"
        return f"<{what} of {self.prim}: not saved>"

    __hash__ = object.__hash__
    __array__ = __array_ufunc__ = __array_function__ = _fail
    __bool__ = __len__ = __iter__ = __contains__ = __getitem__ = _fail
    __float__ = __int__ = __index__ = __complex__ = _fail
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _fail
    __neg__ = __pos__ = __abs__ = __invert__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _fail
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _fail
    __pow__ = __rpow__ = __matmul__ = __rmatmul__ = _fail


class _Indexed:
    """Per-argument rules of a variadic primitive, built from one rule taking the position."""

    __slots__ = ("rule",)

    def __init__(self, rule: Rule) -> None:
        self.rule = rule

    def __getitem__(self, i: int) -> Rule:
        rule = self.rule
        return lambda *a, **k: rule(i, *a, **k)


#: the plain scalar types a primal commonly is (the hot paths test for them first)
PLAIN_SCALARS = (float, int, np.float64)
#: the scalar types whose dtype is float64 without asking
FLOAT64_SCALARS = (float, np.float64)
#: Python and NumPy scalar types of each kind
REAL_SCALARS = (float, int, np.float64, np.float32)
COMPLEX_SCALARS = (complex, np.complex128, np.complex64)


def bind(prim: Primitive, args: Sequence[Any], params: dict[str, Any]) -> Any:
    """Apply ``prim``: to the innermost trace among ``args`` if any is traced, else plainly."""
    top = None
    seq = False
    for a in args:
        if isinstance(a, Tracer):
            if top is None or a._level > top._level:
                top = a
        elif type(a) in _RARE_OPERANDS:
            seq = True
    if top is None:
        return apply_plain(prim, args, params)
    if seq:  # rules index and transpose their arguments as arrays
        args = [_array_argument(a, prim) for a in args]
    if prim.nondiff:
        # no derivative: drop the differentiating levels; a batch still has to be mapped
        args = [unwrap_derivatives(a) for a in args]
        top = None
        for a in args:
            if isinstance(a, Tracer) and (top is None or a._level > top._level):
                top = a
        if top is None:
            return prim.impl(*args, **params)
    return top._trace.process(prim, args, params)


_SEQUENCES = (list, tuple)
# Operand types that take bind's rare branch (the common path pays one set lookup, as it
# paid a tuple test): sequences, turned into arrays, and the types refused as operands
# of a primitive (REFUSED_OPERANDS: type -> why and the rewrite)
REFUSED_OPERANDS: dict[type, str] = {
    np.matrix: "numpy.matrix gives * the meaning of a matrix product and keeps every "
               "result 2-D, which dualrev's rules do not follow; pass np.asarray(M) "
               "instead of the matrix M (and write matrix products with @)."}
_RARE_OPERANDS: set[type] = {list, tuple, np.matrix}


def refuse_operand(cls: type, why: str) -> None:
    """Refuse instances of ``cls`` as operands of any primitive meeting a traced value,
    with ``why`` (what goes wrong and the rewrite) and the user's line."""
    REFUSED_OPERANDS[cls] = why
    _RARE_OPERANDS.add(cls)


def plain_operand(cls: type, plain: Callable[[Any], np.ndarray]) -> None:
    """Let instances of the ndarray subclass ``cls`` meet traced values as the plain
    ndarrays ``plain`` gives for them (dualrev/buffers.py's PlainInput: the caller's
    array): the tape copies what its rules read only of plain ndarrays, so a subclass
    must never reach a trace."""
    _VIEWED_OPERANDS[cls] = plain
    _RARE_OPERANDS.add(cls)


_VIEWED_OPERANDS: dict[type, Callable[[Any], np.ndarray]] = {}


def plain_view(v: Any) -> Any:
    """``v`` as the plain ndarray it stands for where its type was given to
    ``plain_operand``, else ``v`` itself."""
    plain = _VIEWED_OPERANDS.get(type(v))
    return v if plain is None else plain(v)


def _array_argument(a: Any, prim: Primitive) -> Any:
    """A list or tuple argument as an array; a refused type (numpy.matrix: computed on
    its data as an ndarray, ``M * x`` would silently be elementwise) raises."""
    plain = _VIEWED_OPERANDS.get(type(a))
    if plain is not None:
        return plain(a)
    why = REFUSED_OPERANDS.get(type(a))
    if why is not None:
        frame = user_frame()
        where = (f" on line {frame.f_lineno} of {frame.f_code.co_filename}"
                 if frame is not None else "")
        kind = f"{type(a).__module__.split('._')[0]}.{type(a).__name__}"
        raise DualrevError(f"dualrev: a {kind} operand meets a traced value in "
                           f"{prim.name}{where}. {why}")
    return as_array(a)


def as_array(x: Any) -> Any:
    """A Python list or tuple (an array-like argument, as NumPy accepts) as an ndarray;
    arrays, scalars and traced values unchanged."""
    return np.asarray(x) if type(x) in _SEQUENCES else x


def apply_plain(prim: Primitive, args: Sequence[Any], params: dict[str, Any]) -> Any:
    """Run ``prim`` on plain values: its scalar version on floats, else its NumPy one."""
    scalar = prim.fast_scalar
    if scalar is not None:
        for a in args:
            if type(a) not in PLAIN_SCALARS:
                break
        else:
            try:
                return scalar(*args)
            except (ArithmeticError, ValueError):
                pass  # let NumPy give its inf/nan (and warning) instead
    return prim.impl(*args, **params)


def strip(x: Any) -> Any:
    """The plain value under all levels of tracing (used where derivatives are zero: an
    index, a mask, a branch). A batched value has no one plain value: that raises.

    Args:
        x: a traced value (of any nesting of transforms) or a plain one.
    Returns:
        The plain NumPy array or scalar under ``x`` (``x`` itself when it is not traced).
    Raises:
        BatchedValueError: ``x`` is batched (a value computed from ``vmap``'s mapped
            arguments); ``stop_gradient`` keeps the batch there.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> def f(x):
        ...     scale = 2.0 if dr.strip(x) > 0 else -2.0   # a plain branch decision
        ...     return scale * x
        >>> print(dr.grad(f)(3.0))
        2.0
        >>> print(dr.strip(np.array([1.0, 2.0])))
        [1. 2.]
    """
    while isinstance(x, Tracer):
        if x._bdepth:
            raise BatchedValueError()
        if x._staged:
            return x.freeze()  # type: ignore[attr-defined]
        x = x.primal
    return x


def concrete(x: Any) -> Any:
    """The plain values under every level, a batch included (all its elements at once):
    for a decision a rule may take for a whole batch, such as which of two exact forms
    to use."""
    while isinstance(x, Tracer):
        if x._staged:
            return x.freeze()  # type: ignore[attr-defined]
        x = x.primal
    return x


def peek(x: Any) -> Any:
    """The plain value under every level, a staged one included *without* recording a
    guard: only for its type, shape or dtype, which a ``dualrev.replay`` recording fixes
    anyway (never for its values: use ``strip`` or ``concrete``)."""
    while isinstance(x, Tracer):
        x = x.primal
    return x


def unwrap_derivatives(x: Any) -> Any:
    """``x`` without its differentiating levels (Dual, Traced), down to a plain value or
    a batched one."""
    while isinstance(x, Tracer) and not x._bdepth and not x._staged:
        x = x.primal
    return x


#: the primitives standing for plain functions called on a replay recording's staged
#: values (``call_plain``), by the function; their names are "plain:module.qualname"
PLAIN_CALLS: dict[Any, Primitive] = {}


def call_plain(func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """``func(*args, **kwargs)``, a function without derivative (argsort, a shape
    query), on values with no derivative or batch level left. A ``dualrev.replay``
    recording's staged values among the positional arguments make it a recorded
    operation, run again on a replay's values, when ``func`` can be named (a module's
    function or a ufunc); a closure's arguments are frozen instead (an "equal" guard)."""
    for a in args:
        if isinstance(a, Tracer):
            break
    else:
        for v in kwargs.values():
            if isinstance(v, Tracer):
                return func(*args, **{k: strip(v) for k, v in kwargs.items()})
        return func(*args, **kwargs)
    prim = PLAIN_CALLS.get(func)
    if prim is None:
        qual = getattr(func, "__qualname__", None) or getattr(func, "__name__", "")
        if "<" in qual or getattr(func, "__closure__", None):  # a lambda, a closure
            source = next((a for a in args if hasattr(type(a), "derived")), None)
            if source is not None:
                # a structural sparsity detection's values (dualrev/sparsity.py): the
                # result is computed from the input, so it stays a value of the detection
                # (an index it gives may select other elements for another input)
                out = func(*[a.primal if hasattr(type(a), "derived") else strip(a)
                             for a in args], **{k: strip(v) for k, v in kwargs.items()})
                return source.derived(out) if isinstance(out, (np.ndarray, np.generic)) else out
            return func(*[strip(a) for a in args], **{k: strip(v) for k, v in kwargs.items()})
        mod = getattr(func, "__module__", None) or "numpy"
        name = f"plain:{mod}.{qual}"
        # keyed by its name, so that a saved program finds it again (primitive_for_key)
        prim = PLAIN_CALLS[func] = Primitive(name, func, nondiff=True, key=name)
    return bind(prim, args, {k: strip(v) for k, v in kwargs.items()})


def primitive_for_key(key: str) -> Primitive | None:
    """The primitive with the portable key ``key``, or None: a declared one
    (``PRIMITIVES``), or a ``call_plain`` primitive (``plain:numpy.argsort``) this
    process has not made yet, made here for a function ``named_function`` allows."""
    prim = PRIMITIVES.get(key)
    if prim is not None or not key.startswith("plain:"):
        return prim
    func = named_function(key[len("plain:"):])
    if func is None:
        return None
    prim = PLAIN_CALLS.get(func)
    if prim is None:
        prim = PLAIN_CALLS[func] = Primitive(key, func, nondiff=True, key=key)
    return prim


def function_name(func: Any) -> str | None:
    """``module.qualname`` of a function a saved program may name (see
    ``named_function``), else None."""
    if isinstance(func, np.ufunc):  # (SciPy's ufuncs say their module is numpy)
        path = qualified_name(func).removesuffix(" (ufunc)")
    else:
        qual = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
        if not isinstance(qual, str):
            return None
        path = f"{getattr(func, '__module__', None) or 'numpy'}.{qual}"
    return path if named_function(path) is func else None


def named_function(path: str) -> Any | None:
    """The function ``module.qualname`` names, if a saved program may call it: a ufunc
    or a function dualrev routes (``FUNCTION_HANDLERS``) of NumPy or SciPy, or a
    module-level function of dualrev's catalogue; found in the modules already imported
    (nothing is imported), else None. A file can name nothing else."""
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        mod = ".".join(parts[:cut])
        obj: Any = sys.modules.get(mod)
        if obj is None:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)
        top = mod.split(".")[0]
        if top in ("numpy", "scipy"):
            ok = isinstance(obj, np.ufunc) or (callable(obj) and obj in FUNCTION_HANDLERS)
        else:
            ok = (mod.startswith("dualrev.catalogue.") and len(parts) == cut + 1
                  and inspect.isfunction(obj) and obj.__module__ == mod)
        return obj if ok else None
    return None


def decide(func: Any, *xs: Any, **params: Any) -> bool:
    """``bool(func(*plain values of xs, **params))``: a decision a rule takes on the plain
    values under every level (a whole batch at once, as ``concrete`` gives them). Under a
    ``dualrev.replay`` recording the decision is a recorded operation whose outcome is a
    "truth" guard, instead of the values being frozen: ``func`` must be a module-level
    function (``call_plain`` names it)."""
    plain = []
    staged = False
    for x in xs:
        while isinstance(x, Tracer):
            if x._staged:
                staged = True
                break
            x = x.primal
        plain.append(x)
    if staged:
        return bool(call_plain(func, plain, params))
    return bool(func(*plain, **params))


def dtype_of(x: Any) -> np.dtype:
    """The dtype of an array, scalar or traced value (batched ones too)."""
    t = type(x)
    if t is np.ndarray:
        return x.dtype
    while isinstance(x, Tracer):
        x = x.primal
    if type(x) is np.ndarray:
        return x.dtype
    t = type(x)
    if t in _SEQUENCES:  # (result_type would read a list as a dtype spec)
        return np.asarray(x).dtype
    if t not in PLAIN_SCALARS:
        dt = getattr(x, "dtype", None)  # another library's array (Dask, CuPy): its own
        if isinstance(dt, np.dtype):
            return dt
    return np.result_type(x)


# ---------------------------------------------------------------------------- registry
# NumPy's protocols hand dualrev a ufunc or a function object; these tables map it to a
# callable built from primitives (a Primitive itself, or a composite written in NumPy).

UFUNC_HANDLERS: dict[Any, Callable[..., Any]] = {}
FUNCTION_HANDLERS: dict[Any, Callable[..., Any]] = {}


def register_ufunc(ufunc: Any, handler: Callable[..., Any]) -> None:
    """Route calls of a NumPy/SciPy ufunc on traced values to ``handler``.

    Once registered, ``ufunc(x)`` on a traced ``x`` calls ``handler(*inputs)`` (keyword
    arguments such as ``where=`` are refused, ``dtype=`` is applied to the result): usually
    a ``Primitive`` with its derivative rules, or a function composed of supported NumPy
    calls. Calls on plain values are NumPy's own. See docs/extending.md.

    Args:
        ufunc: the ``numpy.ufunc`` (``np.cbrt``, ``scipy.special.erf``).
        handler: a callable of the ufunc's inputs, returning the result.
    Returns:
        None; the registration is global (it replaces any earlier handler of ``ufunc``).
    Example:
        >>> import numpy as np
        >>> import scipy.special as sp
        >>> import dualrev as dr
        >>> exp10 = dr.Primitive("exp10", sp.exp10, elementwise=True)
        >>> d_exp10 = lambda g, ans, x: g * ans * np.log(10.0)
        >>> _ = exp10.defjvp(d_exp10).defvjp(d_exp10, saves="ans")
        >>> dr.register_ufunc(sp.exp10, exp10)
        >>> print(round(float(dr.grad(lambda x: sp.exp10(x))(1.0)), 6))
        23.025851
        >>> from dualrev.primitive import UFUNC_HANDLERS
        >>> _ = UFUNC_HANDLERS.pop(sp.exp10)   # (undo the registration of this example)
    """
    UFUNC_HANDLERS[ufunc] = handler


def register_function(func: Any, handler: Callable[..., Any] | None = None) -> Any:
    """Route a NumPy function (``__array_function__``) on traced values to ``handler``.

    ``handler`` receives the call's arguments unchanged. Usable as a decorator:
    ``@register_function(np.sum)``. The handler builds the result from supported NumPy
    calls or ``Primitive``s, so that every transform differentiates it; calls on plain
    values are NumPy's own.

    Args:
        func: the NumPy function (``np.ptp``, ``np.linalg.slogdet``).
        handler: a callable taking ``func``'s arguments; omitted, ``register_function``
            returns a decorator that registers the function it decorates.
    Returns:
        ``handler``; or, without one, the decorator (which returns the function it is
        given). The registration is global and replaces any earlier handler of ``func``.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> from dualrev.primitive import FUNCTION_HANDLERS
        >>> builtin = FUNCTION_HANDLERS[np.ptp]   # (dualrev has one; the example replaces it)
        >>> @dr.register_function(np.ptp)
        ... def ptp(a, axis=None, out=None, keepdims=False):
        ...     return np.max(a, axis, keepdims=keepdims) - np.min(a, axis, keepdims=keepdims)
        >>> print(dr.grad(np.ptp)(np.array([1.0, 5.0, 3.0])))
        [-1.  1.  0.]
        >>> FUNCTION_HANDLERS[np.ptp] = builtin   # (and puts dualrev's back)
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
        # scipy.special's ufuncs report numpy as their module too
        special = sys.modules.get("scipy.special")
        if getattr(np, name, None) is not func and special is not None:
            if getattr(special, name, None) is func:
                return f"scipy.special.{name} (ufunc)"
            # a ufunc whose __name__ is another's (SciPy 1.15's pro_cv says obl_cv)
            for public in dir(special):
                if getattr(special, public, None) is func:
                    return f"scipy.special.{public} (ufunc)"
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


def foreign_array(x: Any) -> Any:
    """The plain value under ``x`` when it is another library's array that NumPy's
    functions dispatch to (NEP 18: Dask, CuPy), else None. Zeros, ones and bases made for
    such a value are made in its library (``like=``, ``*_like``), so that derivatives stay
    where the value is (lazy, on its device) instead of meeting a host ndarray."""
    while isinstance(x, Tracer):
        x = x.primal
    t = type(x)
    if t is np.ndarray or t in PLAIN_SCALARS or isinstance(x, np.generic):
        return None
    if (hasattr(t, "__array_function__") and hasattr(t, "__array_ufunc__")
            and not issubclass(t, np.ndarray) and hasattr(x, "shape") and hasattr(x, "dtype")):
        return x
    return None


def asarray_keep(x: Any) -> Any:
    """``np.asarray(x)`` for an implementation's plain operand, but another library's
    array (``foreign_array``: Dask, CuPy) as it is: never copied to the host."""
    if type(x) is np.ndarray:
        return x
    return x if foreign_array(x) is not None else np.asarray(x)


def zeros_as(shape: tuple[int, ...], dtype: Any, like: Any) -> Any:
    """``np.zeros(shape, dtype)`` in the array library of ``like``'s plain value: an
    ndarray unless that is another library's array (``foreign_array``), whose chunks (a
    Dask array's) are kept where the shapes agree.

    Made by ``np.zeros_like(p, shape=...)``, which NEP 18 dispatches to the library's own
    (Dask, CuPy), rather than ``np.zeros(..., like=p)``: while a transform runs,
    ``np.zeros`` is dualrev's wrapper (namespace.py), which ``like=`` hands to the
    library by that name, and Dask does not know it (it computes instead)."""
    if type(like) is np.ndarray:
        return np.zeros(shape, dtype)
    p = foreign_array(like)
    if p is None:
        return np.zeros(shape, dtype)
    if tuple(p.shape) == tuple(shape):
        return np.zeros_like(p, dtype=dtype)
    return np.zeros_like(p, dtype=dtype, shape=shape)


def ones_as(shape: tuple[int, ...], dtype: Any, like: Any) -> Any:
    """``np.ones(shape, dtype)`` in the array library of ``like``'s plain value (see
    ``zeros_as``): the constants a rule builds and grad's seed."""
    p = None if type(like) is np.ndarray else foreign_array(like)
    if p is None:
        return np.ones(shape, dtype)
    return np.ones_like(p, dtype=dtype, shape=shape)


def eye_as(n: int, dtype: Any, like: Any) -> Any:
    """``np.eye(n, dtype=dtype)`` in the array library of ``like``'s plain value (see
    ``zeros_as``; ``np.diag`` of ones: Dask's ``eye`` takes none of NumPy's ``like=``
    keywords)."""
    p = None if type(like) is np.ndarray else foreign_array(like)
    if p is None:
        return np.eye(n, dtype=dtype)
    return np.diag(np.ones_like(p, dtype=dtype, shape=(n,)))


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


# per type: whether its arrays are Dask's (chunked collections)
_CHUNKED: dict[type, bool] = {}


class Shaped:
    """What the tape keeps of an array whose VJP needs only its shape and dtype (and, for
    a chunked array such as Dask's, its ``chunks``: a cotangent spread back over it is
    chunked alike, which keeps Dask's scheduler streaming chunk by chunk)."""

    __slots__ = ("shape", "dtype", "chunks")

    def __init__(self, x: Any) -> None:
        self.shape = shape_of(x)
        self.dtype = getattr(x, "dtype", None)
        t = type(x)
        chunked = False if t is np.ndarray else _CHUNKED.get(t)
        if chunked is None:  # once per type: a failed hasattr costs 0.6 us per scalar
            chunked = _CHUNKED[t] = hasattr(t, "__dask_graph__")
        self.chunks = x.chunks if chunked else None

    @property
    def ndim(self) -> int:
        return len(self.shape)




def is_complex(x: Any) -> bool:
    """Whether a value (array, scalar or traced) has a complex dtype; cheap for the
    common real cases."""
    t = type(x)
    if t is np.ndarray:
        return x.dtype.kind == "c"
    if t in REAL_SCALARS:
        return False
    if t in COMPLEX_SCALARS:
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
        return c.astype(dt)  # the traced value's own method (tracer.py, cast.py)
    if hasattr(tc, "__array_function__") and not isinstance(c, np.generic):
        # another library's array (Dask, CuPy): cast by its own methods, staying lazy or
        # on its device (np.asarray would compute it or copy it to the host)
        if c.dtype == dt:
            return c
        if c.dtype.kind == "c" and dt.kind != "c":
            c = np.real(c)
        return c.astype(dt)
    v = np.asarray(c)
    if v.dtype.kind == "c" and dt.kind != "c":
        v = v.real
    return v.astype(dt)[()]


class Trace:
    """Base of the interpreters a traced value belongs to (``Tape``, ``ForwardTrace``,
    ``BatchTrace``): what the machinery below them (``bind``, the write machinery of
    inplace.py and at.py, the traced values' methods) asks of a value's ``_trace``, so
    that it reaches each trace's own code through the value instead of through tables
    the traces' layer fills.

    ``level`` is the nesting level of its transform call, ``what`` the transform's name
    (for the escaped-tracer error), ``finished`` whether the transform has returned.
    A batch trace also has ``size`` and ``wrap(value)`` (a whole batch as its value).
    """

    __slots__ = ()
    level: int
    what: str
    finished = False

    def process(self, prim: Primitive, args: Sequence[Any], params: dict[str, Any]) -> Any:
        """Apply ``prim`` to ``args``, some of which are values of this trace."""
        raise NotImplementedError(f"{type(self).__name__}.process")

    def constant(self, value: Any) -> Any:
        """The plain (or outer-level traced) ``value`` as a value of this trace with no
        derivative at its level: a buffer writes into which are recorded (np.zeros_like
        of a traced value, a buffer made in the user's code: dualrev/buffers.py), or a
        plain value a write rebinds a traced object to."""
        raise InPlaceError("a write into a value of an unknown trace")
