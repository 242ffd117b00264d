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
import threading
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Generic, ParamSpec, TypeVar, overload

import numpy as np

from . import config
from .compile import compile_program
from .diagnose import library_file
from .errors import ReplayError, ReplayWarning
from .primitive import Tracer
from .program import CallSignature, GuardFailed, Program
from .staging import Staged, StagingTrace, same_bits
from .tracer import defer_to_xarray, new_level
from .tree import LEAF, TreeDef, node_children, tree_flatten, tree_unflatten

ndarray = np.ndarray

#: leaves staged as inputs (their values may change between calls); every other leaf is
#: static: part of the signature by value (ints, bools, strings, None) or by identity
_DYNAMIC_SCALARS = (float, complex, np.floating, np.complexfloating)


#: what a recorded call may return besides staged values (others run dynamically)
_OUTPUT_TYPES = (ndarray, np.generic, int, float, complex, bool, str, bytes)


def _compile_default(program: Program) -> Callable[[Sequence[Any]], list[Any]]:
    """The default runner of a recorded program: compiled to Python source
    (dualrev/compile.py) at its first replay, for the signature it was recorded for."""
    return compile_program(program)


class GuardFailure:
    """A replay whose guard did not hold: the guard's ``kind`` and the user's line
    (``where``) that took the decision when the program was recorded; kind ``"error"``
    for an operation that raised on the new values (``where``: the error)."""

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


def _views_of(o: ndarray, held: frozenset[int], inputs: list[Any]) -> bool:
    """Whether the view ``o`` looks into a constant of the program (``held``: their ids)
    or an input array."""
    b = o.base
    while isinstance(b, ndarray):
        if id(b) in held or any(b is x for x in inputs):
            return True
        b = b.base
    return False


class _Variant:
    """One recorded program of a signature, with what its recording read."""

    __slots__ = ("program", "run", "watched", "cells", "globals_", "copy_out", "held")

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
        #: the ids of the program's constant arrays (a result viewing one is copied)
        self.held = frozenset(id(c) for c in program.consts.values()
                              if isinstance(c, ndarray))

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
            if not same_bits(a, c):
                return (f"an array of shape {a.shape} the function read was changed in "
                        "place")
        return None


_MISSING = object()


def _unwrap(f: Any) -> Any:
    """The Python function under a bound method or functools.partial, else ``f``."""
    for _ in range(8):
        if isinstance(f, functools.partial):
            f = f.func
        elif isinstance(f, types.MethodType):
            f = f.__func__
        else:
            break
    return f


def _state_of(fn: Any, limit: int = 32) -> tuple[list[tuple[Any, Any]],
                                                list[tuple[dict, str, Any]], list[ndarray]]:
    """The closure cells, each with the object it holds, and the globals named by the
    code, each with its object, of the user's functions a call of ``fn`` reaches by
    name: ``fn``, the functions it wraps (``__wrapped__``: the user's function under a
    transform), and the Python functions those hold in their cells or name as globals,
    transitively (at most ``limit`` functions; dualrev's, NumPy's and SciPy's own are
    followed but not checked). What a replay checks has not been rebound; the plain
    arrays among those objects are returned too, to check their bits (an element read
    as a number, ``w[0]``, never meets an operation as the array)."""
    cells: list[tuple[Any, Any]] = []
    globals_: list[tuple[dict, str, Any]] = []
    arrays: list[ndarray] = []
    seen: set[int] = set()
    queue = [fn]
    while queue and len(seen) < limit:
        f = _unwrap(queue.pop(0))
        if f is None or id(f) in seen:
            continue
        seen.add(id(f))
        wrapped = getattr(f, "__wrapped__", None)
        if wrapped is not None:
            queue.append(wrapped)
        if not isinstance(f, types.FunctionType):
            continue
        user = not library_file(f.__code__.co_filename)
        for c in f.__closure__ or ():
            try:
                obj = c.cell_contents
            except ValueError:
                continue
            if user:
                cells.append((c, obj))
                if type(obj) is ndarray:
                    arrays.append(obj)
            if callable(obj) and not isinstance(obj, type):
                queue.append(obj)
        if not user:
            continue
        g = f.__globals__
        for name in _global_names(f.__code__):
            obj = g.get(name, _MISSING)
            if obj is not _MISSING:
                globals_.append((g, name, obj))
                if type(obj) is ndarray:
                    arrays.append(obj)
                if isinstance(obj, (types.FunctionType, functools.partial)):
                    queue.append(obj)
    return cells, globals_, arrays


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):  # a lambda or comprehension inside
            names |= _global_names(c)
    return names


def _legacy_state_view() -> ndarray | None:
    """A view of the memory of NumPy's legacy global generator's Mersenne Twister state
    (624 key words and the position), through the bit generator's ctypes interface, or
    None where that interface is missing (then ``get_state`` is read instead)."""
    try:
        import ctypes

        bg = np.random.mtrand._rand._bit_generator
        addr = bg.ctypes.state_address
        if not isinstance(addr, int) or not addr:
            return None
        view = np.ctypeslib.as_array((ctypes.c_uint32 * 625).from_address(addr))
        probe = np.random.get_state(legacy=False)["state"]
        if not (np.array_equal(view[:624], probe["key"]) and int(view[624]) == probe["pos"]):
            return None  # not the layout we expect: read get_state instead
        _LEGACY_OWNER.append(bg)  # the view's memory is the generator's: keep it alive
        return view
    except Exception:  # noqa: BLE001 - any failure: the slower, public way
        return None


_LEGACY: list[Any] = []
_LEGACY_OWNER: list[Any] = []


def _rng_state() -> Any:
    """The state of NumPy's legacy global generator (``np.random.rand`` & co.), to tell a
    recording that drew from it: a copy of its state words (2.5 kB, about a microsecond)
    where its memory can be viewed, else ``np.random.get_state`` (about 60 us)."""
    if not _LEGACY:
        _LEGACY.append(_legacy_state_view())
    view = _LEGACY[0]
    if view is not None:
        return view.copy()
    st = np.random.get_state(legacy=False)["state"]
    return np.append(st["key"], np.uint32(st["pos"]))


P = ParamSpec("P")  # a Replayed function is called with fn's arguments
R = TypeVar("R")  # and returns what fn returns


class Replayed(Generic[P, R]):
    """A function recorded once per signature and replayed (see ``replay``).

    Attributes:
        stats: a ``ReplayStats``.
        compile: turns a recorded ``Program`` into the function that runs it on a list
            of input leaves (a ``dualrev.compile.Runner`` by default; ``Program.run``
            to run the reference interpreter instead).
    """

    compile: Callable[[Program], Callable[[Sequence[Any]], list[Any]]] = staticmethod(
        _compile_default)

    def __init__(self, fn: Callable[P, R], max_variants: int = 8,
                 static_argnums: Sequence[int] | int = (), max_records: int = 16,
                 allow_random: bool = False, check_stale: bool = True,
                 quiet: bool = False) -> None:
        if max_variants < 1:
            raise ValueError("dualrev.replay: max_variants must be at least 1")
        self.fn = fn
        self.max_variants = max_variants
        self.static_argnums = (
            (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums))
        self.max_records = max_records
        self.allow_random = allow_random
        self.check_stale = check_stale
        self.quiet = quiet  # no ReplayWarning for re-recording (dualrev.optimize's use)
        self.stats = ReplayStats()
        self._cache: OrderedDict[Any, list[_Variant]] = OrderedDict()
        self._records: dict[Any, int] = {}  # recordings per signature
        self._dynamic: set[Any] = set()  # signatures given up on
        # signatures recorded with their scalar arguments frozen (see _record)
        self._frozen: set[Any] = set()
        self._thrashing = False  # new signatures run dynamically (see _check_thrash)
        self._since = (0, 0)  # (records, replays) at the last clear()
        self._lock = threading.RLock()
        functools.update_wrapper(self, fn)

    # ------------------------------------------------------------------ call
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        key, leaves, dyn, tree = self._signature(args, kwargs)
        if key is None:  # a traced argument: inside another transform
            return self.fn(*args, **kwargs)
        variants = self._cache.get(key)
        tried = None
        if variants:
            tried = variants[0]
            out = self._try(key, variants, [leaves[i] for i in dyn])
            if out is not _MISSING:
                return out
        if key in self._dynamic or (self._thrashing and variants is None):
            self.stats.dynamic += 1
            return self.fn(*args, **kwargs)
        return self._record(key, args, kwargs, leaves, dyn, tree, tried)

    def _try(self, key: Any, variants: list[_Variant], inputs: list[Any]) -> Any:
        """The result of the first recorded variant whose guards hold, or _MISSING."""
        for v in list(variants):
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
            except Exception as e:  # noqa: BLE001
                # an operation failed on these values (a singular matrix): the Python the
                # recording left out may handle it (try/except), so the call records
                # anew, and raises only if the dynamic call does
                self.stats._note(self.stats.guard_failures,
                                 GuardFailure("error", f"{type(e).__name__}: {e}"))
                continue
            self.stats.replays += 1
            if v is not variants[0]:
                with self._lock:
                    if v in variants:
                        variants.remove(v)
                        variants.insert(0, v)
            try:
                self._cache.move_to_end(key)  # (least recently used evicted first)
            except KeyError:
                pass  # evicted meanwhile by another thread
            return self._outputs(v, outs, inputs)
        return _MISSING

    def _signature(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """(key, leaves, positions of the staged leaves, the pytree the leaves come from
        (None: the positional arguments are the leaves)); key None when an argument is
        traced by an enclosing transform."""
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
            fast: list[Any] = [len(args)]
            for a in args:
                fast.append(a.shape)
                fast.append(a.dtype)
                fl = a.flags
                fast.append(fl.c_contiguous or (fl.f_contiguous and "F"))
            return tuple(fast), list(args), range(len(args)), None
        leaves: list[Any] = []
        parts = [stat]
        dyn: list[int] = []
        if not _walk(tree, leaves, parts, dyn):
            return None, leaves, dyn, None  # a traced argument
        return tuple(parts), leaves, dyn, tree

    def _outputs(self, v: _Variant, outs: list[Any], inputs: list[Any]) -> Any:
        prog = v.program
        res = []
        # (outputs past the result: the written arguments, see _writeback)
        for o, t, cp in zip(outs, prog.out_types, v.copy_out, strict=False):
            to = type(o)
            if to is not t:
                o = _as_type(o, t)
            elif to is ndarray and (cp or (o.base is not None and _views_of(o, v.held,
                                                                          inputs))):
                # an input, a constant, a slot returned twice, or a view of an input or a
                # constant: the caller may write into what it gets (other results are
                # the run's own arrays, returned as the dynamic call returns them, in
                # their layout, which later BLAS calls' rounding depends on)
                o = o.copy(order="K")
            res.append(o)
        wb = prog.meta.get("writeback")
        if wb:  # the call wrote into arrays it was given: so does the replay
            for k, j in wb:
                np.copyto(inputs[k], outs[j], casting="unsafe")
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
                leaves: list[Any], dyn: Sequence[int], tree: Any,
                tried: _Variant | None = None) -> Any:
        """Record a call (and return its result): its array and scalar leaves staged.
        Where that recording fails and the signature has scalar arguments, once more
        with those frozen: each handed to ``fn`` as the plain number it is, an "equal"
        guard on its input slot (code that needs a plain parameter -- percentile's q, a
        tolerance, a norm's order -- then records; another value records anew). The
        signature keeps recording so after that."""
        with self._lock:
            variants = self._cache.get(key)
            if variants and variants[0] is not tried:  # another thread recorded meanwhile
                out = self._try(key, variants, [leaves[i] for i in dyn])
                if out is not _MISSING:
                    return out
            n = self._records.get(key, 0)
            if n >= self.max_records:
                self._dynamic.add(key)
                if not self.quiet:
                    name = getattr(self.fn, "__name__", "the function")
                    warnings.warn(
                        f"dualrev.replay: {name} was recorded {n} times for one signature "
                        "(its guards keep failing or what it reads keeps changing: see "
                        ".stats); it now runs without replay for that signature",
                        ReplayWarning, stacklevel=3)
                self.stats._note(self.stats.dynamic_reasons, "re-recorded too often")
                self.stats.dynamic += 1
                return self.fn(*args, **kwargs)
            self._records[key] = n + 1
            trace = StagingTrace(new_level())
            staged = list(leaves)
            frozen = key in self._frozen
            for i in dyn:
                x = trace.input(leaves[i])
                if frozen and type(leaves[i]) is not ndarray:
                    trace.guard(x, "equal", leaves[i])
                else:
                    staged[i] = x
            inputs = [staged[i] for i in dyn]
            treedef = None if tree is None else tree_flatten(tree)[1]
            a2, k2 = self._rebuild(args, kwargs, staged, treedef)
            cells, globals_, arrays = _state_of(self.fn)
            snaps = [(a, a.copy(order="K")) for a in arrays]  # as the call reads them
            rng = _rng_state()
            failure: Exception | None = None
            try:
                defer_to_xarray()
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    out = self.fn(*a2, **k2)
            except Exception as e:  # noqa: BLE001 - the dynamic call decides
                failure = e
            trace.finish()
            if (failure is not None and not frozen and not isinstance(failure, ReplayError)
                    and any(type(leaves[i]) is not ndarray for i in dyn)):
                self._frozen.add(key)
                self._records[key] = n  # (this attempt recorded nothing)
                return self._record(key, args, kwargs, leaves, dyn, tree, tried)
            _reissue(caught)
            if failure is not None:  # (outside the except block: the user's own error
                return self._fallback(key, args, kwargs, failure)  # is not chained)
            lost = [w for w in caught if not _reproduced(w)]
            if lost:
                # a warning of the Python code (a non-finite derivative, the user's own):
                # a replay would not give it, so nothing is kept
                self.stats._note(self.stats.dynamic_reasons,
                                 f"warned while recording: {lost[0].category.__name__}")
                return self._finish(trace, out)[1]
            if not self.allow_random and not _same_rng(rng, _rng_state()):
                warnings.warn(
                    "dualrev.replay: the function drew random numbers from np.random while "
                    "it was recorded: a replay repeats the recorded draws. "
                    "Pass the draws as arguments, or allow_random=True to silence this",
                    ReplayWarning, stacklevel=3)
            try:
                program, values, copy_out = self._finish(trace, out)
                program.meta["writeback"] = self._writeback(trace, program, inputs, dyn,
                                                            leaves)
            except ReplayError as e:
                failure = e
            if failure is not None:
                return self._fallback(key, args, kwargs, failure)
            program.meta["signature"] = key
            program.meta["function"] = getattr(self.fn, "__qualname__", repr(self.fn))
            # (structured, for calling the program by itself and saving it)
            program.meta["call"] = CallSignature.from_call(args, kwargs, self.static_argnums)
            watched = trace.watched_constants()
            ids = {id(a) for a, _ in watched}
            watched += [(a, s) for a, s in snaps if id(a) not in ids]
            variant = _Variant(program, type(self).compile(program), watched, cells,
                               globals_, copy_out)
            self.stats.records += 1
            self._check_thrash()
            variants = self._cache.setdefault(key, [])
            variants.insert(0, variant)
            self._cache.move_to_end(key)
            self._evict()
            return values

    def _check_thrash(self) -> None:
        """Recording at nearly every call (a static argument that changes at each call,
        a new lambda each time, or guards that keep failing across signatures) costs
        more than running dynamically: past ``2 * max_records`` recordings with fewer
        replays than recordings, new signatures run dynamically (with one warning)."""
        s = self.stats
        records, replays = s.records - self._since[0], s.replays - self._since[1]
        if self._thrashing or records <= 2 * self.max_records or replays >= records:
            return
        self._thrashing = True
        self.stats._note(self.stats.dynamic_reasons, "recording at nearly every call")
        if not self.quiet:
            name = getattr(self.fn, "__name__", "the function")
            warnings.warn(
                f"dualrev.replay: {name} records at nearly every call ({records} "
                f"recordings, {replays} replays: a static argument that changes at each "
                "call, such as a new lambda, or values that keep failing its guards); "
                "calls with new signatures now run without replay", ReplayWarning,
                stacklevel=4)

    def _fallback(self, key: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                  e: Exception) -> Any:
        """The recording raised ``e``: the dynamic call decides. If it raises too, that
        is the user's error; if it does not, the recording cannot stand for it (the
        signature then runs dynamically, the reason in ``stats.dynamic_reasons``)."""
        result = self.fn(*args, **kwargs)  # raises the user's own error
        self._dynamic.add(key)
        self.stats.dynamic += 1
        self.stats._note(self.stats.dynamic_reasons,
                         f"recording failed: {type(e).__name__}: {e}")
        if not isinstance(e, ReplayError) and not self.quiet:
            name = getattr(self.fn, "__name__", "the function")
            why = f"{type(e).__name__}: {str(e)[:200]}"
            warnings.warn(f"dualrev.replay: recording {name} failed ({why}) where the call "
                          "itself does not; it runs without replay for this signature",
                          ReplayWarning, stacklevel=4)
        return result

    def _writeback(self, trace: StagingTrace, program: Program, inputs: list[Any],
                   dyn: Sequence[int], leaves: list[Any]) -> list[tuple[int, int]]:
        """The arrays given to the call that it wrote into (a staged input rebound by an
        in-place write: a non-differentiated argument, which the dynamic call writes
        through to the caller's array): each written value becomes an extra output of
        the program, copied into the caller's array now and after each replay, as
        ``(input position, output position)`` pairs."""
        pairs = []
        for k, (st, i) in enumerate(zip(inputs, dyn, strict=True)):
            if type(st) is Staged and st._trace is trace and st._index == trace.inputs[k]:
                continue  # not written
            if type(leaves[i]) is not ndarray:
                continue  # a number: immutable, its name was rebound
            if type(st) is not Staged or st._trace is not trace:
                raise ReplayError("the function wrote a traced value into an array "
                                  "argument that is not differentiated",
                                  "write into a copy (y = y.copy())")
            pairs.append((k, len(program.outputs)))
            program.outputs += (st._index,)
        for k, _ in pairs:  # (only once none is refused)
            np.copyto(leaves[dyn[k]], inputs[k].primal, casting="unsafe")
        return pairs

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
            elif not isinstance(o, _OUTPUT_TYPES):
                # a pullback, a closure, an object: it may hold the recording's values
                # (a vjp's tape), which a replay could not give it afresh
                raise ReplayError(f"the function returned a {type(o).__name__}",
                                  "return arrays and numbers")
            else:
                s = trace.const(o)
                p = o
            copy_out.append(s in seen or s in trace.consts or s in trace.inputs)
            seen.add(s)
            slots.append(s)
            types_.append(type(p))
            values.append(p.copy(order="K") if copy_out[-1] and type(p) is ndarray else p)
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
            self._frozen.clear()
            self._thrashing = False
            self._since = (self.stats.records, self.stats.replays)

    @property
    def programs(self) -> list[Program]:
        """The recorded programs, most recently used signature last."""
        return [v.program for vs in self._cache.values() for v in vs]


# Under dualrev.debug_nans a replayed call runs dynamically: a replay runs compiled
# NumPy without the traces, which are where the mode checks each value. Swapped in and
# out, so that the mode costs a replay nothing while it is off.
_REPLAYING_CALL = Replayed.__call__


def _dynamic_call(self: Replayed, *args: Any, **kwargs: Any) -> Any:
    """``Replayed.__call__`` while dualrev.debug_nans is on: the function itself."""
    with self._lock:
        self.stats.dynamic += 1
        self.stats._note(self.stats.dynamic_reasons, "dualrev.debug_nans is on")
    return self.fn(*args, **kwargs)


@config.on_debug_nans
def _choose_debug(on: bool) -> None:
    Replayed.__call__ = _dynamic_call if on else _REPLAYING_CALL  # type: ignore[method-assign]


def _reproduced(w: Any) -> bool:
    """Whether a replay gives the warning ``w`` again: NumPy's floating-point warnings
    (a RuntimeWarning raised in an operation: division by zero, overflow) come from the
    operations the program runs, and come again."""
    return issubclass(w.category, RuntimeWarning) and library_file(w.filename)


def _reissue(caught: list[Any]) -> None:
    """Give the warnings a recording caught to the user's filters, as the call gave them."""
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno,
                               source=w.source)


def _same_rng(a: ndarray, b: ndarray) -> bool:
    return a.tobytes() == b.tobytes()


def _walk(x: Any, leaves: list[Any], parts: list[Any], dyn: list[int]) -> bool:
    """Append the leaves of the pytree ``x`` (in ``tree_flatten``'s order) to ``leaves``,
    its signature to ``parts`` (structure; an array's shape and dtype; a float's type;
    a static leaf's value or identity) and the positions of the staged leaves to
    ``dyn``; False at a traced leaf. Cheaper than ``tree_flatten`` and a ``TreeDef``'s
    hash, which a replay would otherwise pay at every call."""
    t = type(x)
    if t is ndarray:
        dyn.append(len(leaves))
        leaves.append(x)
        parts.append(ndarray)
        parts.append(x.shape)
        parts.append(x.dtype)
        # the layout: whether a view function gives a view or a copy (NumPy's aliasing,
        # which in-place writes follow) depends on it
        fl = x.flags
        parts.append(fl.c_contiguous or (fl.f_contiguous and "F"))
        return True
    if t is float:
        dyn.append(len(leaves))
        leaves.append(x)
        parts.append(float)
        return True
    if t is tuple or t is list or (isinstance(x, tuple) and hasattr(x, "_fields")):
        parts.append(t)
        parts.append(len(x))
        return all(_walk(v, leaves, parts, dyn) for v in x)
    if t is dict:
        keys = sorted(x)
        parts.append(dict)
        parts.append(tuple(keys))
        return all(_walk(x[k], leaves, parts, dyn) for k in keys)
    if x is None:
        parts.append(None)
        return True
    if isinstance(x, Tracer):
        return False
    if isinstance(x, _DYNAMIC_SCALARS):
        dyn.append(len(leaves))
        leaves.append(x)
        parts.append(t)
        return True
    if isinstance(x, ndarray):
        raise ReplayError(f"an argument is a {t.__name__} (an ndarray subclass)",
                          "pass np.asarray(x)")
    if isinstance(x, (tuple, list, dict)) or node_children(x) is not None:
        # subclasses tree_flatten reads as containers, registered nodes (a DataArray):
        # their structure (aux data included: dims, coordinates) is part of the signature
        parts.append(t)
        leaves_, treedef = tree_flatten(x)
        parts.append(treedef)
        return all(_walk(v, leaves, parts, dyn) for v in leaves_)
    leaves.append(x)
    parts.append(t)
    parts.append(_static_key(x))
    return True


class _Ident:
    """An unhashable static argument in a signature, by identity; the key holds it, so
    its id cannot be reused by another object while the recording is cached."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return type(other) is _Ident and other.obj is self.obj


def _static_key(v: Any) -> Any:
    """A static leaf's part of the signature: itself where it is hashable (ints,
    strings, None, tuples of them by value; functions and most objects by identity),
    else its identity (the key keeps a reference either way)."""
    try:
        hash(v)
    except TypeError:
        return _Ident(v)
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


@overload
def replay(fn: Callable[P, R], *, max_variants: int = 8,
           static_argnums: Sequence[int] | int = (), max_records: int = 16,
           allow_random: bool = False, check_stale: bool = True) -> Replayed[P, R]: ...
@overload
def replay(fn: None = None, *, max_variants: int = 8,
           static_argnums: Sequence[int] | int = (), max_records: int = 16,
           allow_random: bool = False, check_stale: bool = True
           ) -> Callable[[Callable[P, R]], Replayed[P, R]]: ...


def replay(fn: Callable[P, R] | None = None, *, max_variants: int = 8,
           static_argnums: Sequence[int] | int = (), max_records: int = 16,
           allow_random: bool = False, check_stale: bool = True
           ) -> Replayed[P, R] | Callable[[Callable[P, R]], Replayed[P, R]]:
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
            ``np.random``'s global generator (``np.random.rand``, ``np.random.normal``).
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
        [0.540302 1.      ]
        >>> print(g.stats.records, g.stats.replays, g.stats.guard_failures[0].kind)
        2 1 truth
    """
    if fn is None:
        return functools.partial(replay, max_variants=max_variants,
                                 static_argnums=static_argnums, max_records=max_records,
                                 allow_random=allow_random, check_stale=check_stale)
    return Replayed(fn, max_variants=max_variants, static_argnums=static_argnums,
                    max_records=max_records, allow_random=allow_random,
                    check_stale=check_stale)
