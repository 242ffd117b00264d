"""Closure conversion: the traced values a callback closes over, made its arguments.

SciPy's routines (quad, solve_ivp, minimize, ...) call a user's callback with plain
numbers and carry extra values only through ``args=``. dualrev differentiates such a
routine with respect to its traced arguments, so a callback that reads a value being
differentiated from its closure (``quad(lambda x: np.exp(-a * x**2), 0, 1)``) would hide
that value from the rule. ``lift`` finds such values and returns a function that takes them
as trailing arguments, which the routine's dispatcher then passes through ``args=``.

It is a static conversion: the walk looks where Python keeps a callable's free values
(closure cells, defaults, ``functools.partial``, bound methods and the objects they are
bound to, callable objects' attributes, containers, nested functions found there) and
rebuilds copies with the arguments in place of the traced values; the user's functions
and objects are never mutated, so the conversion is thread-safe. Globals are not converted
(a traced value reaches a global only through a ``global`` statement): a callback reading
one raises ``ClosureError`` naming it. What the walk cannot see (a C-level callable, an
object past the depth bound, a class attribute) is found by the routine's dynamic check,
which raises ``ClosureError`` when a converted callback still returns a traced value for
plain inputs. See docs/design.md (2026-12-06, closures in SciPy callbacks).
"""

from __future__ import annotations

import copy
import functools
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from . import namespace
from .errors import ClosureError
from .primitive import Tracer

__all__ = ["Lifted", "closure_error", "lift", "lift_all"]

# How far the walk goes: nesting levels below the callable, and objects visited in all.
# A callback's parameters sit one to four levels down (a cell holding a list of arrays,
# a bound method's object holding a dict); the budget keeps a cell holding a long list of
# numbers or a large object graph from costing more than a SciPy call.
MAX_DEPTH = 8
MAX_NODES = 10_000

# Types that hold no traced value (checked by exact type: one dict lookup).
_ATOMS = frozenset({
    int, float, complex, bool, str, bytes, type(None), range, slice, type, types.ModuleType,
    types.BuiltinFunctionType, types.CodeType, types.MethodWrapperType,
    types.WrapperDescriptorType, types.MethodDescriptorType, np.ufunc, np.dtype,
    type(Ellipsis), type(NotImplemented),
})

_BUSY = object()  # an object whose walk has started (a cycle leads back to it)


def closure_error(where: str, what: str) -> ClosureError:
    """The error for a callback ``what`` handed to ``where`` that returned a traced value
    for plain inputs after conversion: a value being differentiated reached it by a way
    ``lift`` does not follow."""
    return ClosureError(
        f"dualrev: {where}: `{what}` returned a traced value for plain inputs: it uses a "
        f"value being differentiated that dualrev could not pass to it as an argument "
        f"(closures, default arguments, functools.partial, bound methods and callable "
        f"objects are converted; a global, a class attribute, a C-level callable, an "
        f"object nested more than {MAX_DEPTH} levels deep or past the first "
        f"{MAX_NODES:,} objects are not), so SciPy's routine "
        f"cannot carry it: pass it through args=(...) instead, and take it as an extra "
        f"parameter of `{what}`.")


def _param(pos: int) -> Callable[[tuple[Any, ...], dict[int, Any]], Any]:
    return lambda ps, memo: ps[pos]


def _back(obj: Any) -> Callable[[tuple[Any, ...], dict[int, Any]], Any]:
    """A reference back to an object being walked (a cycle): its copy when it is rebuilt."""
    key = id(obj)
    return lambda ps, memo: memo.get(key, obj)


def _build(plans: list[Any], items: Any, ps: tuple[Any, ...], memo: dict[int, Any]) -> list[Any]:
    return [v if p is None else p(ps, memo) for p, v in zip(plans, items, strict=True)]


def _code_names(code: types.CodeType) -> set[str]:
    """The global names a function's code (and the code of functions defined in it) reads."""
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _code_names(c)
    return names


def _holds_tracer(v: Any, depth: int = 2) -> bool:
    """Whether a global's value is, or directly holds, a traced value."""
    if isinstance(v, Tracer):
        return True
    if depth == 0 or type(v) in _ATOMS or isinstance(v, types.FunctionType):
        return False
    if isinstance(v, (list, tuple)):
        return any(_holds_tracer(x, depth - 1) for x in v[:100])
    if isinstance(v, dict):
        return any(_holds_tracer(x, depth - 1) for x in list(v.values())[:100])
    d = getattr(v, "__dict__", None)
    return isinstance(d, dict) and any(_holds_tracer(x, depth - 1)
                                       for x in list(d.values())[:100])


class _Walk:
    """One conversion: the traced values found (in order, each once) and the plans that
    rebuild the objects holding them."""

    def __init__(self) -> None:
        self.params: list[Any] = []
        self.index: dict[int, int] = {}
        self.state: dict[int, Any] = {}
        self.budget = MAX_NODES

    def visit(self, obj: Any, depth: int) -> Any:
        """A plan ``(ps, memo) -> copy of obj with ps in place of its traced values``, or
        None when no traced value is reachable from ``obj``."""
        if isinstance(obj, Tracer):
            key = id(obj)
            if key not in self.index:
                self.index[key] = len(self.params)
                self.params.append(obj)
            return _param(self.index[key])
        self.budget -= 1  # atoms count too: a long list of numbers is a long walk
        t = type(obj)
        if t in _ATOMS or t is Lifted or (t is np.ndarray and obj.dtype != object) \
                or isinstance(obj, np.generic):
            return None
        if depth > MAX_DEPTH or self.budget <= 0:
            return None
        key = id(obj)
        seen = self.state.get(key)
        if seen is _BUSY:
            return _back(obj)
        if key in self.state:
            return seen
        self.state[key] = _BUSY
        plan = self._visit(obj, t, depth + 1)
        self.state[key] = plan
        return plan

    def _visit(self, obj: Any, t: type, depth: int) -> Any:
        if t is types.FunctionType:
            return self._function(obj, depth)
        if t is tuple or t is list or (isinstance(obj, tuple) and hasattr(obj, "_fields")):
            return self._sequence(obj, t, depth)
        if isinstance(obj, dict):
            return self._dict(obj, depth)
        if t is np.ndarray:  # an object array
            return self._object_array(obj, depth)
        if t is types.MethodType:
            fp, sp = self.visit(obj.__func__, depth), self.visit(obj.__self__, depth)
            if fp is None and sp is None:
                return None
            func, owner = obj.__func__, obj.__self__
            return lambda ps, memo: types.MethodType(
                func if fp is None else fp(ps, memo), owner if sp is None else sp(ps, memo))
        if isinstance(obj, functools.partial):
            return self._partial(obj, depth)
        if isinstance(obj, (set, frozenset, types.GeneratorType, types.CoroutineType)):
            return None
        return self._object(obj, depth)

    def _function(self, fn: types.FunctionType, depth: int) -> Any:
        code = fn.__code__
        if code.co_names:
            glob = fn.__globals__
            for name in _code_names(code):
                if name in glob and _holds_tracer(glob[name]):
                    raise ClosureError(
                        f"dualrev: the callback `{fn.__qualname__}` reads the global "
                        f"`{name}`, which holds a value being differentiated: dualrev does "
                        f"not convert globals (the callback would see a value that no "
                        f"derivative flows through). Pass the value through args=(...) and "
                        f"take it as a parameter, or close over a local variable instead "
                        f"of a `global` statement.")
        cells = fn.__closure__ or ()
        cell_plans = []
        for cell in cells:
            try:
                contents = cell.cell_contents
            except ValueError:  # a cell not yet assigned
                cell_plans.append(None)
                continue
            cell_plans.append(self.visit(contents, depth))
        dp = None if fn.__defaults__ is None else self.visit(fn.__defaults__, depth)
        kp = None if fn.__kwdefaults__ is None else self.visit(fn.__kwdefaults__, depth)
        if dp is None and kp is None and cell_plans.count(None) == len(cell_plans):
            return None
        key = id(fn)

        def build(ps: tuple[Any, ...], memo: dict[int, Any]) -> Any:
            if key in memo:
                return memo[key]
            new_cells = tuple(c if p is None else types.CellType()
                              for c, p in zip(cells, cell_plans, strict=True))
            new = types.FunctionType(code, fn.__globals__, fn.__name__, None,
                                     new_cells or None)
            memo[key] = new  # before the cells are filled: a cycle finds the copy
            for c, p in zip(new_cells, cell_plans, strict=True):
                if p is not None:
                    c.cell_contents = p(ps, memo)
            new.__defaults__ = fn.__defaults__ if dp is None else dp(ps, memo)
            new.__kwdefaults__ = fn.__kwdefaults__ if kp is None else kp(ps, memo)
            new.__qualname__ = fn.__qualname__
            new.__module__ = fn.__module__
            new.__doc__ = fn.__doc__
            new.__dict__.update(fn.__dict__)
            return new

        return build

    def _sequence(self, seq: Any, t: type, depth: int) -> Any:
        if len(seq) > self.budget:  # past the bound: left to the routine's check
            return None
        items = list(seq)
        plans = [self.visit(v, depth) for v in items]
        if plans.count(None) == len(plans):
            return None
        key = id(seq)
        if t is list:
            def build_list(ps: tuple[Any, ...], memo: dict[int, Any]) -> Any:
                if key in memo:
                    return memo[key]
                new: list[Any] = []
                memo[key] = new
                new.extend(_build(plans, items, ps, memo))
                return new

            return build_list
        if t is tuple:
            return lambda ps, memo: tuple(_build(plans, items, ps, memo))
        return lambda ps, memo: t._make(_build(plans, items, ps, memo))

    def _dict(self, d: dict[Any, Any], depth: int) -> Any:
        if len(d) > self.budget:
            return None
        items = list(d.items())
        plans = [self.visit(v, depth) for _, v in items]
        if plans.count(None) == len(plans):
            return None
        key = id(d)

        def build(ps: tuple[Any, ...], memo: dict[int, Any]) -> Any:
            if key in memo:
                return memo[key]
            new = dict(d) if type(d) is dict else copy.copy(d)
            memo[key] = new
            for (k, _), p in zip(items, plans, strict=True):
                if p is not None:
                    new[k] = p(ps, memo)
            return new

        return build

    def _object_array(self, arr: np.ndarray, depth: int) -> Any:
        if arr.size > self.budget:
            return None
        items = list(arr.flat)
        plans = [self.visit(v, depth) for v in items]
        if plans.count(None) == len(plans):
            return None

        def build(ps: tuple[Any, ...], memo: dict[int, Any]) -> Any:
            new = arr.copy()
            for i, (p, v) in enumerate(zip(plans, items, strict=True)):
                new.flat[i] = v if p is None else p(ps, memo)
            return new

        return build

    def _partial(self, part: functools.partial, depth: int) -> Any:
        fp = self.visit(part.func, depth)
        ap = self.visit(part.args, depth)
        kp = self.visit(part.keywords, depth)
        if fp is None and ap is None and kp is None:
            return None
        func, pargs, kws, t = part.func, part.args, part.keywords, type(part)

        def build(ps: tuple[Any, ...], memo: dict[int, Any]) -> Any:
            return t(func if fp is None else fp(ps, memo),
                     *(pargs if ap is None else ap(ps, memo)),
                     **(kws if kp is None else kp(ps, memo)))

        return build

    def _object(self, obj: Any, depth: int) -> Any:
        """An instance: its ``__dict__`` entries and slots."""
        attrs: list[tuple[str, bool, Any]] = []  # (name, in __dict__, value)
        d = getattr(obj, "__dict__", None)
        if isinstance(d, dict):
            for k, v in list(d.items()):
                if isinstance(k, str):
                    attrs.append((k, True, v))
        for klass in type(obj).__mro__:
            slots = klass.__dict__.get("__slots__", ())
            for name in (slots,) if isinstance(slots, str) else slots:
                if name in ("__dict__", "__weakref__"):
                    continue
                try:
                    attrs.append((name, False, object.__getattribute__(obj, name)))
                except AttributeError:
                    continue
        if not attrs:
            return None
        plans = []
        for name, in_dict, v in attrs:
            p = self.visit(v, depth)
            if p is not None:
                plans.append((name, in_dict, p))
        if not plans:
            return None
        key = id(obj)

        def build(ps: tuple[Any, ...], memo: dict[int, Any]) -> Any:
            if key in memo:
                return memo[key]
            try:
                new = copy.copy(obj)
            except Exception as e:
                raise ClosureError(
                    f"dualrev: a callback uses a value being differentiated held by a "
                    f"{type(obj).__name__} object, which cannot be copied to hold the "
                    f"traced value ({e}); pass the value through args=(...) and take it "
                    f"as a parameter.") from None
            memo[key] = new
            for name, in_dict, p in plans:
                if in_dict:
                    new.__dict__[name] = p(ps, memo)
                else:
                    object.__setattr__(new, name, p(ps, memo))
            return new

        return build


class Lifted:
    """A callback with the traced values it closed over taken as trailing arguments
    (made by ``lift``): ``Lifted(...)(*args, *params) == fun(*args)``.

    Each call rebuilds copies of the callback's closure holding the given values (the
    copies of the last call are reused when the values are the same objects, as in the
    many calls of one SciPy solve).
    """

    __slots__ = ("__weakref__", "_last", "_plan", "fun", "nparams")

    def __init__(self, fun: Callable[..., Any], plan: Any, nparams: int) -> None:
        self.fun = fun
        self._plan = plan
        self.nparams = nparams
        self._last: tuple[tuple[Any, ...], Any] | None = None

    def bind(self, params: tuple[Any, ...]) -> Callable[..., Any]:
        """The callback with ``params`` in place of the traced values it closed over."""
        last = self._last
        if last is not None:  # a plain loop: a generator costs more than the comparison
            for a, b in zip(last[0], params, strict=True):
                if a is not b:
                    break
            else:
                return last[1]
        built = self._plan(params, {})
        self._last = (params, built)  # one assignment: a racing thread rebuilds at worst
        return built

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        cut = len(args) - self.nparams
        return self.bind(args[cut:])(*args[:cut], **kwargs)

    def __repr__(self) -> str:
        return f"<lifted {self.fun!r} (+{self.nparams} traced parameters)>"


def lift(fun: Callable[..., Any]) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """``(g, params)`` with ``g(*args, *params) == fun(*args)`` for every ``args``, where
    ``params`` are the traced values ``fun`` closes over (in a fixed order: first
    reached first) and ``g`` takes them as trailing arguments; ``(fun, ())`` when ``fun``
    closes over none.

    The walk follows closure cells, default arguments (``__defaults__`` and
    ``__kwdefaults__``), ``functools.partial`` (function, arguments and keywords), bound
    methods (the function and the object, its ``__dict__`` and slots), callable objects
    (their attributes, and the closure of their class's ``__call__``), lists, tuples,
    namedtuples, dicts and object arrays, and the functions found there, to
    ``MAX_DEPTH`` levels; ``fun`` and everything it holds are left as
    they are (``g`` rebuilds copies). While no transform runs it returns at once.

    Args:
        fun: the callback (any callable).
    Returns:
        ``(g, params)``: ``g`` a ``Lifted`` callable, or ``fun`` itself when ``params``
        is empty.
    Raises:
        ClosureError: ``fun`` reads a global that holds a traced value.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> from dualrev.closure import lift
        >>> def f(a):
        ...     g, params = lift(lambda x: a * x)
        ...     assert len(params) == 1 and params[0] is a
        ...     return g(3.0, *params)
        >>> print(dr.grad(f)(2.0))
        3.0
    """
    if not namespace.active():  # no transform runs: no live traced value exists
        return fun, ()
    target = fun
    if not isinstance(fun, (types.FunctionType, types.MethodType, functools.partial, Lifted)):
        call = next((k.__dict__["__call__"] for k in type(fun).__mro__
                     if "__call__" in k.__dict__), None)
        if isinstance(call, types.FunctionType):  # a callable object: its bound __call__,
            target = types.MethodType(call, fun)   # whose function may close over values
    walk = _Walk()
    plan = walk.visit(target, 0)
    if not walk.params:
        return fun, ()
    return Lifted(fun, plan, len(walk.params)), tuple(walk.params)


def lift_all(callbacks: list[Any], args: tuple[Any, ...]) -> tuple[list[Any], tuple[Any, ...]]:
    """Several callbacks of one SciPy call, each called ``cb(*head, *args)`` by SciPy
    (``fun``, ``jac``, ``events``; ``fun``, ``jac``, ``hess``), lifted together: the traced
    values they close over are appended to ``args`` (each callback's own, in order), and
    each returned callback takes ``(*head, *args, *extras)`` and passes ``fun`` its own
    extras only. Non-callables (None, numbers, strings) pass through; when no callback
    closes over a traced value the inputs are returned as they are (while no transform
    runs, at once).

    Args:
        callbacks: the callables (or None/values) that SciPy calls with ``args``.
        args: the ``args=`` tuple of the call.
    Returns:
        ``(callbacks, args)`` to hand to SciPy instead. A callback's ``terminal`` and
        ``direction`` attributes (solve_ivp's events) are kept.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> from dualrev.closure import lift_all
        >>> def f(k):
        ...     (rhs, jac), args = lift_all([lambda t, y, c: -k * y + c, None], (1.0,))
        ...     assert jac is None and len(args) == 2
        ...     return rhs(0.0, 2.0, *args)
        >>> print(dr.grad(f)(3.0))
        -2.0
    """
    if not namespace.active():
        return callbacks, args
    lifted = [lift(c) if callable(c) else (c, ()) for c in callbacks]
    extras: tuple[Any, ...] = ()
    for _, ps in lifted:
        extras += ps
    if not extras:
        return callbacks, args
    total, start, out = len(extras), 0, []
    for c, (g, ps) in zip(callbacks, lifted, strict=True):
        out.append(_select(c, g, total, start, start + len(ps)) if callable(c) else c)
        start += len(ps)
    return out, (*args, *extras)


def _select(original: Any, g: Callable[..., Any], total: int, lo: int,
            hi: int) -> Callable[..., Any]:
    """``g`` called with the last ``total`` positional arguments replaced by the slice
    ``lo:hi`` of them (its own extras), with the original's event attributes."""
    def call(*a: Any, **kw: Any) -> Any:
        cut = len(a) - total
        return g(*a[:cut], *a[cut + lo:cut + hi], **kw)

    for attr in ("terminal", "direction"):
        if hasattr(original, attr):
            setattr(call, attr, getattr(original, attr))
    return call
