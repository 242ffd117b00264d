"""``dualrev.replay``: record a transformed function's computation once per signature and
run the recorded program for later calls, without the user's Python.

A recording runs the function once with its array arguments staged (dualrev/staging.py):
everything the transform computes -- the forward pass, the backward pass, the batched
Jacobian passes -- is recorded as a straight-line ``Program`` of primitives on plain
values, with a ``Guard`` for every decision the Python code took on a value. A later call
with the same signature (the arguments' pytree structure, each array's shape and dtype,
the static values) runs the program; a failed guard tries the next recorded variant or
records again. See docs/replay.md.
"""

from __future__ import annotations

import functools
import random as _pyrandom
import threading
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .errors import ReplayError, ReplayWarning
from .primitive import Tracer
from .program import GuardFailed, Program
from .staging import Staged, StagingTrace
from .tracer import new_level
from .tree import LEAF, TreeDef, tree_flatten, tree_unflatten

ndarray = np.ndarray

#: leaves staged as inputs (their values may change between calls); every other leaf is
#: static: part of the signature by value (ints, bools, strings, None) or by identity
_DYNAMIC_SCALARS = (float, complex, np.floating, np.complexfloating)


def _compile_default(program: Program) -> Callable[[Sequence[Any]], list[Any]]:
    """The default runner of a recorded program: the reference interpreter."""
    return program.run


class GuardFailure:
    """A replay whose guard did not hold: the guard's ``kind`` and the user's line
    (``where``) that took the decision when the program was recorded."""

    __slots__ = ("kind", "where")

    def __init__(self, kind: str, where: str | None) -> None:
        self.kind = kind
        self.where = where

    def __repr__(self) -> str:
        return f"GuardFailure({self.kind!r}, {self.where!r})"


class ReplayStats:
    """What a replayed function did: ``records`` (programs recorded), ``replays`` (calls
    answered by a recorded program), ``guard_failures`` (the last 100 ``GuardFailure``),
    ``stale`` (the last 100 reasons a recording was found stale: a captured array
    changed in place, a closure cell or global rebound), ``dynamic`` (calls run
    without replay) with ``dynamic_reasons`` (the last 100 reasons), ``evictions``."""

    __slots__ = ("records", "replays", "guard_failures", "stale", "dynamic",
                 "dynamic_reasons", "evictions")

    def __init__(self) -> None:
        self.records = 0
        self.replays = 0
        self.guard_failures: list[GuardFailure] = []
        self.stale: list[str] = []
        self.dynamic = 0
        self.dynamic_reasons: list[str] = []
        self.evictions = 0

    def _note(self, where: list[Any], item: Any) -> None:
        where.append(item)
        if len(where) > 100:
            del where[0]

    def __repr__(self) -> str:
        return (f"ReplayStats(records={self.records}, replays={self.replays}, "
                f"guard_failures={len(self.guard_failures)}, stale={len(self.stale)}, "
                f"dynamic={self.dynamic}, evictions={self.evictions})")


class _Variant:
    """One recorded program of a signature, with what its recording read."""

    __slots__ = ("program", "run", "watched", "cells", "globals_", "copy_out")

    def __init__(self, program: Program, run: Callable[[Sequence[Any]], list[Any]],
                 watched: list[tuple[ndarray, ndarray]],
                 cells: list[tuple[Any, Any]], globals_: list[tuple[dict, str, Any]],
                 copy_out: tuple[bool, ...]) -> None:
        self.program = program
        self.run = run
        self.watched = watched
        self.cells = cells
        self.globals_ = globals_
        self.copy_out = copy_out

    def stale(self) -> str | None:
        """Why the recording no longer stands for the function, or None."""
        for cell, obj in self.cells:
            try:
                now = cell.cell_contents
            except ValueError:
                return "a closure variable was deleted"
            if now is not obj:
                return "a closure variable was rebound"
        for g, name, obj in self.globals_:
            if g.get(name, _MISSING) is not obj:
                return f"the global {name!r} was rebound"
        for a, c in self.watched:
            if not _same_bits(a, c):
                return (f"an array of shape {a.shape} the function read was changed in "
                        "place")
        return None


_MISSING = object()


def _same_bits(a: ndarray, c: ndarray) -> bool:
    if a.shape != c.shape or a.dtype != c.dtype:
        return False
    if a.flags.c_contiguous:
        return a.data == c.data  # memoryview comparison: bytes, no copy
    return bool(np.array_equal(a, c, equal_nan=True)) and a.tobytes() == c.tobytes()


def _functions(fn: Any) -> list[types.FunctionType]:
    """``fn`` and the functions it wraps (``__wrapped__``, functools.partial's ``func``),
    the user's function under a transform included."""
    out: list[types.FunctionType] = []
    seen: set[int] = set()
    f = fn
    for _ in range(16):
        if f is None or id(f) in seen:
            break
        seen.add(id(f))
        if isinstance(f, functools.partial):
            f = f.func
            continue
        if isinstance(f, types.MethodType):
            f = f.__func__
            continue
        if isinstance(f, types.FunctionType):
            out.append(f)
        f = getattr(f, "__wrapped__", None)
    return out


def _state_of(fn: Any) -> tuple[list[tuple[Any, Any]], list[tuple[dict, str, Any]]]:
    """The closure cells of ``fn`` and of the functions it wraps, each with the object
    it holds, and the globals their code names, each with its object: what a replay
    checks has not been rebound."""
    cells: list[tuple[Any, Any]] = []
    globals_: list[tuple[dict, str, Any]] = []
    for f in _functions(fn):
        for c in f.__closure__ or ():
            try:
                cells.append((c, c.cell_contents))
            except ValueError:
                continue
        g = f.__globals__
        for name in _global_names(f.__code__):
            if name in g:
                globals_.append((g, name, g[name]))
    return cells, globals_


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):  # a lambda or comprehension inside
            names |= _global_names(c)
    return names


def _rng_state() -> Any:
    """The state of NumPy's legacy global generator and Python's ``random``, to tell a
    recording that drew random numbers from them."""
    return np.random.get_state(legacy=False)["state"]["key"].copy(), _pyrandom.getstate()


class Replayed:
    """A function recorded once per signature and replayed (see ``replay``).

    Attributes:
        stats: a ``ReplayStats``.
        compile: turns a recorded ``Program`` into the function that runs it on a list
            of input leaves (``Program.run`` by default); replace it to run compiled
            code instead.
    """

    compile: Callable[[Program], Callable[[Sequence[Any]], list[Any]]] = staticmethod(
        _compile_default)

    def __init__(self, fn: Callable[..., Any], max_variants: int = 8,
                 static_argnums: Sequence[int] | int = (), max_records: int = 16,
                 allow_random: bool = False, check_stale: bool = True) -> None:
        if max_variants < 1:
            raise ValueError("dualrev.replay: max_variants must be at least 1")
        self.fn = fn
        self.max_variants = max_variants
        self.static_argnums = (
            (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums))
        self.max_records = max_records
        self.allow_random = allow_random
        self.check_stale = check_stale
        self.stats = ReplayStats()
        self._cache: OrderedDict[Any, list[_Variant]] = OrderedDict()
        self._records: dict[Any, int] = {}  # recordings per signature
        self._dynamic: set[Any] = set()  # signatures given up on
        self._lock = threading.RLock()
        functools.update_wrapper(self, fn)

    # ------------------------------------------------------------------ call
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        key, leaves, dyn, treedef = self._signature(args, kwargs)
        if key is None:  # a traced argument: inside another transform
            return self.fn(*args, **kwargs)
        variants = self._cache.get(key)
        if variants is not None:
            inputs = [leaves[i] for i in dyn]
            for v in variants:
                if self.check_stale:
                    why = v.stale()
                    if why is not None:
                        self._drop(key, v, why)
                        continue
                try:
                    outs = v.run(inputs)
                except GuardFailed as e:
                    g = e.guard
                    self.stats._note(self.stats.guard_failures, GuardFailure(g.kind, g.where))
                    continue
                self.stats.replays += 1
                if v is not variants[0]:
                    with self._lock:
                        if v in variants:
                            variants.remove(v)
                            variants.insert(0, v)
                return self._outputs(v, outs)
        if key in self._dynamic:
            self.stats.dynamic += 1
            return self.fn(*args, **kwargs)
        return self._record(key, args, kwargs, leaves, dyn, treedef)

    def _signature(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """(key, leaves, positions of the staged leaves, treedef); key None when an
        argument is traced by an enclosing transform."""
        static = self.static_argnums
        if static:
            n = len(args)
            stat = tuple((i % n, _static_key(args[i])) for i in static if -n <= i < n)
            skip = {i for i, _ in stat}
            tree = (tuple(a for i, a in enumerate(args) if i not in skip), kwargs)
        else:
            stat = ()
            tree = (args, kwargs) if kwargs else args
        if not kwargs and not static and all(type(a) is ndarray for a in args):
            leaves = list(args)
            treedef = None
            parts: list[Any] = [len(args)]
            for a in args:
                parts.append(a.shape)
                parts.append(a.dtype)
            return tuple(parts), leaves, range(len(leaves)), treedef
        leaves, treedef = tree_flatten(tree)
        parts = [treedef, stat]
        dyn = []
        for i, v in enumerate(leaves):
            t = type(v)
            if t is ndarray:
                parts.append((t, v.shape, v.dtype))
                dyn.append(i)
            elif t is float or isinstance(v, _DYNAMIC_SCALARS):
                parts.append(t)
                dyn.append(i)
            elif isinstance(v, Tracer):
                return None, leaves, dyn, treedef
            elif isinstance(v, ndarray):
                raise ReplayError(f"an argument is a {type(v).__name__} (an ndarray "
                                  "subclass)", "pass np.asarray(x)")
            else:
                parts.append((t, _static_key(v)))
        return tuple(parts), leaves, dyn, treedef

    def _outputs(self, v: _Variant, outs: list[Any]) -> Any:
        prog = v.program
        res = []
        for o, t, cp in zip(outs, prog.out_types, v.copy_out, strict=True):
            to = type(o)
            if to is not t:
                o = _as_type(o, t)
            elif cp and to is ndarray:
                o = o.copy()
            res.append(o)
        if prog.out_def is LEAF:
            return res[0]
        return tree_unflatten(prog.out_def, res)

    def _drop(self, key: Any, v: _Variant, why: str) -> None:
        with self._lock:
            self.stats._note(self.stats.stale, why)
            variants = self._cache.get(key)
            if variants is not None and v in variants:
                variants.remove(v)

    # ------------------------------------------------------------------ record
    def _record(self, key: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                leaves: list[Any], dyn: Sequence[int], treedef: TreeDef | None) -> Any:
        with self._lock:
            n = self._records.get(key, 0)
            if n >= self.max_records:
                self._dynamic.add(key)
                warnings.warn(
                    f"dualrev.replay: {getattr(self.fn, '__name__', 'the function')} was "
                    f"recorded {n} times for one signature (its guards keep failing or "
                    "what it reads keeps changing: see .stats); it now runs without "
                    "replay for that signature", ReplayWarning, stacklevel=3)
                self.stats._note(self.stats.dynamic_reasons, "re-recorded too often")
                self.stats.dynamic += 1
                return self.fn(*args, **kwargs)
            self._records[key] = n + 1
            trace = StagingTrace(new_level())
            staged = list(leaves)
            for i in dyn:
                staged[i] = trace.input(leaves[i])
            a2, k2 = self._rebuild(args, kwargs, staged, treedef)
            cells, globals_ = _state_of(self.fn)
            rng = _rng_state()
            try:
                out = self.fn(*a2, **k2)
            finally:
                trace.finish()
            if not self.allow_random and not _same_rng(rng, _rng_state()):
                warnings.warn(
                    "dualrev.replay: the function drew random numbers while it was "
                    "recorded (np.random or random): a replay repeats the recorded draws. "
                    "Pass the draws as arguments, or allow_random=True to silence this",
                    ReplayWarning, stacklevel=3)
            program, values, copy_out = self._finish(trace, out)
            program.meta["signature"] = key
            program.meta["function"] = getattr(self.fn, "__qualname__", repr(self.fn))
            variant = _Variant(program, type(self).compile(program),
                               trace.watched_constants(), cells, globals_, copy_out)
            self.stats.records += 1
            variants = self._cache.setdefault(key, [])
            variants.insert(0, variant)
            self._cache.move_to_end(key)
            self._evict()
            return values

    def _rebuild(self, args: tuple[Any, ...], kwargs: dict[str, Any], staged: list[Any],
                 treedef: TreeDef | None) -> tuple[list[Any], dict[str, Any]]:
        if treedef is None:
            return staged, {}
        tree = tree_unflatten(treedef, staged)
        if self.static_argnums:
            pos, kw = tree
            n = len(args)
            skip = {i % n for i in self.static_argnums if -n <= i < n}
            it = iter(pos)
            return [args[i] if i in skip else next(it) for i in range(n)], kw
        if kwargs:
            return list(tree[0]), tree[1]
        return list(tree), {}

    def _finish(self, trace: StagingTrace, out: Any) -> tuple[Program, Any, tuple[bool, ...]]:
        """The program with ``out``'s leaves as its outputs, the plain result of this
        call, and which outputs a replay must copy (an input, a constant, or a slot
        returned twice: the caller may write into what it gets)."""
        if isinstance(out, Tracer):
            outs, out_def = [out], LEAF
        else:
            outs, out_def = tree_flatten(out)
        slots = []
        types_ = []
        values = []
        seen: set[int] = set()
        copy_out = []
        for o in outs:
            if type(o) is Staged:
                s = trace.slot_of(o)
                p = o.primal
            elif isinstance(o, Tracer):
                raise ReplayError("the function returned a traced value of another "
                                  "transform", "return plain results")
            else:
                s = trace.const(o)
                p = o
            copy_out.append(s in seen or s in trace.consts or s in trace.inputs)
            seen.add(s)
            slots.append(s)
            types_.append(type(p))
            values.append(p.copy() if copy_out[-1] and type(p) is ndarray else p)
        program = trace.program(slots, out_def, types_)
        return program, (values[0] if out_def is LEAF else
                         tree_unflatten(out_def, values)), tuple(copy_out)

    def _evict(self) -> None:
        total = sum(len(v) for v in self._cache.values())
        while total > self.max_variants:
            key, variants = next(iter(self._cache.items()))
            variants.pop()
            if not variants:
                del self._cache[key]
            total -= 1
            self.stats.evictions += 1

    def clear(self) -> None:
        """Forget every recording (the next call of each signature records anew)."""
        with self._lock:
            self._cache.clear()
            self._records.clear()
            self._dynamic.clear()

    @property
    def programs(self) -> list[Program]:
        """The recorded programs, most recently used signature last."""
        return [v.program for vs in self._cache.values() for v in vs]


def _same_rng(a: Any, b: Any) -> bool:
    return bool(np.array_equal(a[0], b[0])) and a[1] == b[1]


def _static_key(v: Any) -> Any:
    """A static leaf's part of the signature: its value where it is hashable (ints,
    strings, None, tuples of them), else its identity (callables, objects)."""
    try:
        hash(v)
    except TypeError:
        return ("id", id(v))
    return v


def _as_type(o: Any, t: type) -> Any:
    """A replayed output as the type the recorded call returned."""
    if t is float:
        return float(o)
    if t is complex:
        return complex(o)
    if t is ndarray:
        return np.asarray(o)
    if issubclass(t, np.generic):
        return t(np.asarray(o)[()])
    return o


def replay(fn: Callable[..., Any] | None = None, *, max_variants: int = 8,
           static_argnums: Sequence[int] | int = (), max_records: int = 16,
           allow_random: bool = False, check_stale: bool = True) -> Any:
    """Record ``fn``'s computation once per signature and replay it for later calls.

    ``fn`` is usually a transformed function (``dr.grad(f)``, ``dr.value_and_grad``,
    ``dr.jacobian``, ``dr.hessian``, ``dr.hvp``, a ``dr.jvp`` closure, ``dr.vmap``); its
    first call for a signature (the arguments' pytree structure, each array's shape and
    dtype, the values of the static arguments: ints, bools, strings, None, ``static_argnums``)
    records everything it computes -- forward and backward passes -- as a program of
    NumPy operations; later calls run that program without the user's Python. Control
    flow stays Python: each ``if``/``while`` on a value, ``float(x)``, ``int(x)``,
    ``np.asarray(x)`` in a SciPy callback is recorded with its outcome as a guard; a
    replay whose guard fails tries the next recorded variant or records anew. A recording
    whose captured arrays changed in place, or whose closure cells or globals were
    rebound, is recorded anew. What a recording freezes (side effects, random draws,
    Python numbers read from mutable objects) is listed in docs/replay.md.

    Args:
        fn: the function; used as ``@dr.replay`` or ``dr.replay(fn, ...)``.
        max_variants: how many recorded programs are kept in all (least recently used
            dropped first).
        static_argnums: positional arguments that are part of the signature by value
            (hashable ones) or identity, never staged.
        max_records: after this many recordings of one signature, calls of it run
            dynamically (with a ``ReplayWarning``).
        allow_random: do not warn when the recorded call drew random numbers from
            ``np.random``'s global generator or ``random``.
        check_stale: check before each replay that captured arrays, closure cells and
            globals are unchanged (on by default).
    Returns:
        A ``Replayed`` callable with ``fn``'s signature; ``.stats`` counts records,
        replays, guard failures and stale recordings.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> def f(x):
        ...     return np.sum(x ** 2) if x[0] > 0 else np.sum(np.sin(x))
        >>> g = dr.replay(dr.grad(f))
        >>> print(g(np.array([1.0, 2.0])), g(np.array([3.0, 4.0])))
        [2. 4.] [6. 8.]
        >>> print(g(np.array([-1.0, 0.0])))   # the branch flips: recorded anew
        [0.54030231 1.        ]
        >>> print(g.stats.records, g.stats.replays, len(g.stats.guard_failures))
        2 1 1
    """
    if fn is None:
        return functools.partial(replay, max_variants=max_variants,
                                 static_argnums=static_argnums, max_records=max_records,
                                 allow_random=allow_random, check_stale=check_stale)
    return Replayed(fn, max_variants=max_variants, static_argnums=static_argnums,
                    max_records=max_records, allow_random=allow_random,
                    check_stale=check_stale)
