"""The staging trace: the outermost trace of a ``dualrev.replay`` recording.

``dualrev.replay`` takes a fresh level *before* the transform it wraps does, and hands
the call's array leaves in as ``Staged`` values of that level. Every primitive the
transform then runs on them -- the user's forward pass under the tape, the backward
pass's rules, jacfwd's and jacrev's batched passes, ``Tape.push`` -- binds down to this
trace last (its level is the oldest), which computes the plain result and appends an
``Op`` to the program being recorded. What comes out is a straight-line ``Program`` of
primitives on plain values (dualrev/program.py) that a later call with new values of the
same signature runs without the user's Python.

``Staged`` is a *value* level, not a derivative level: the loops that drop derivative
levels (``unwrap_derivatives``, ``without_derivatives``) stop at it, so a comparison or
another ``nondiff`` primitive of a staged value is a recorded operation returning a staged
boolean (``np.where(x > 0, a, b)`` replays with new values). Every place a staged value
becomes a Python or plain value (``bool``, ``float``, ``int``, ``.item()``, ``np.asarray``,
``strip``/``concrete``, a staged value inside an operation's parameters) records a
``Guard`` with the outcome, which a replay checks.
"""

from __future__ import annotations

import linecache
import operator
import sys
from typing import Any

import numpy as np

from .diagnose import library_file
from .errors import ReplayError
from .primitive import Primitive, Trace, Tracer, apply_plain
from .program import Guard, Op, Program
from .tracer import TracedBase

ndarray = np.ndarray
_SCALARS = (float, int, bool, complex, np.generic)
_IMMUTABLE = (float, int, bool, complex, str, bytes, type(None), np.generic, np.dtype)


def _item(t: Any, i: int) -> Any:
    return t[i]


#: one element of an operation's tuple result (np.nonzero, divmod...): an operation of its own
item_p = Primitive("staged_item", _item, nondiff=True)


def _raises(*args: Any, prim: Primitive, params: dict[str, Any]) -> bool:
    try:
        apply_plain(prim, args, params)
    except Exception:  # noqa: BLE001 - any error: the recording's Python saw one
        return True
    return False


#: whether an operation raises on its arguments: an operation that raised while a call
#: was recorded (the Python around it may have caught the error and gone another way)
#: is recorded as this, with a truth guard
raises_p = Primitive("staged_raises", _raises, nondiff=True)


class StagingTrace(Trace):
    """The trace recording one ``Program``: every primitive reaching it is run on the
    plain values and appended as an ``Op``.

    Args:
        level: its nesting level, older than every level the wrapped transform takes.
    """

    __slots__ = ("level", "steps", "consts", "const_ids", "n", "inputs", "snapshots")

    def __init__(self, level: int) -> None:
        self.level = level
        self.steps: list[Op | Guard] = []
        self.consts: dict[int, Any] = {}
        # id(constant) -> (constant, slot): one slot per object met (kept alive here)
        self.const_ids: dict[int, tuple[Any, int]] = {}
        # (the caller's array, the copy the program holds) for each array constant
        self.snapshots: list[tuple[ndarray, ndarray]] = []
        self.n = 0
        self.inputs: list[int] = []

    # -------------------------------------------------------------------- slots
    def input(self, value: Any) -> Staged:
        """A staged input leaf."""
        s = self.n
        self.n += 1
        self.inputs.append(s)
        x = Staged(value, self, s)
        if type(value) is ndarray and not value.ndim:
            x._array0d = True  # a 0-d array argument, which writes change (not a scalar)
        return x

    def constant(self, value: Any) -> Staged:
        """``value`` as a constant of the program being recorded (a buffer a write
        rebinds, see ``Trace.constant``)."""
        slot = self.const(value)
        return Staged(self.consts[slot], self, slot)

    def const(self, value: Any) -> int:
        """The slot of a plain value met as an operand. An array is kept as a copy of
        what it held when met (the caller may write into it later, during the call or
        between calls: the replay's stale check compares the caller's array with it);
        one slot per object while its bits are unchanged."""
        hit = self.const_ids.get(id(value))
        if hit is not None and hit[0] is value:
            if not isinstance(value, ndarray):
                return hit[1]
            snap = self.consts[hit[1]]
            if same_bits(value, snap):
                return hit[1]
        s = self.n
        self.n += 1
        if isinstance(value, ndarray):
            if type(value) is ndarray and _read_only_memory(value):
                self.consts[s] = value  # nobody can write it (the cached identity)
            else:
                snap = copy_laid_out(value)
                self.consts[s] = snap
                self.snapshots.append((value, snap))
        else:
            self.consts[s] = value
        self.const_ids[id(value)] = (value, s)
        return s

    def slot_of(self, x: Any) -> int:
        """The slot of an output: a staged value's own, or a constant's."""
        if type(x) is Staged and x._trace is self:
            return x._index
        return self.const(x)

    # -------------------------------------------------------------------- ops
    def process(self, prim: Primitive, args: Any, params: dict[str, Any]) -> Any:
        vals = []
        slots = []
        const_ids = self.const_ids
        for a in args:
            if type(a) is Staged and a._trace is self:
                vals.append(a.primal)
                slots.append(a._index)
                continue
            if isinstance(a, Tracer):
                self._foreign(prim, a)
            vals.append(a)
            hit = const_ids.get(id(a))
            slots.append(hit[1] if hit is not None and hit[0] is a and type(a) is not ndarray
                         else self.const(a))
        if params:
            params = self._plain_params(params)
        try:
            ans = apply_plain(prim, vals, params)
        except Exception:
            # the error is the recording's outcome too: a replay must raise it again,
            # or record anew where the Python caught it and took another way
            out = self.n
            self.n = out + 1
            self.steps.append(Op(raises_p, tuple(slots), {"prim": prim, "params": params},
                                 out))
            self.steps.append(Guard(out, "truth", True, _where()))
            raise
        out = self.n
        self.n = out + 1
        self.steps.append(Op(prim, tuple(slots), params, out))
        t = type(ans)
        if t is float or t is np.float64:
            return Staged(ans, self, out)
        if t is ndarray:
            if not prim.elementwise and _shape_may_vary(prim, vals, slots, self):
                self.steps.append(Guard(out, "shape", ans.shape, _where()))
            return Staged(ans, self, out)
        return self._other(out, ans)

    def _foreign(self, prim: Primitive, a: Any) -> None:
        """Raise for a traced operand that is not this recording's value."""
        if type(a) is Staged:
            raise ReplayError("a value staged by another dr.replay recording met this "
                              "one (nested dr.replay calls)",
                              "call the inner replayed function outside the outer one")
        raise ReplayError(f"{prim.name} met a traced value of a transform that started "
                          "before this dr.replay recording",
                          "apply dr.replay to the outermost transform")

    def _other(self, out: int, ans: Any) -> Any:
        """An operation's result that is not a float or an array: a scalar is staged, a
        tuple's elements are operations of their own, anything else (None, a dtype)
        kept as it is, its value guarded."""
        if isinstance(ans, _SCALARS):
            return Staged(ans, self, out)
        if type(ans) is tuple or type(ans) is list:
            items = []
            for i, v in enumerate(ans):
                s = self.n
                self.n = s + 1
                self.steps.append(Op(item_p, (out,), {"i": i}, s))
                if type(v) is ndarray or isinstance(v, _SCALARS):
                    if type(v) is ndarray:
                        self.steps.append(Guard(s, "shape", v.shape, _where()))
                    items.append(Staged(v, self, s))
                else:
                    items.append(self._other(s, v))
            return type(ans)(items)
        self.steps.append(Guard(out, "equal", ans, _where()))
        return ans

    def _plain_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """The parameters with any staged value in them replaced by its plain value, an
        "equal" guard recorded for it (the value is then baked into the operation)."""
        new = None
        for k, v in params.items():
            t = type(v)
            if t is Staged or (t in _CONTAINERS and _holds_staged(v)):
                if new is None:
                    new = dict(params)
                new[k] = _freeze_all(v)
        return params if new is None else new

    def guard(self, x: Staged, kind: str, expected: Any) -> None:
        """Record that the recording relied on ``x``'s value (see ``Guard``)."""
        self.steps.append(Guard(x._index, kind, expected, _where()))

    def finish(self) -> None:
        """The recorded call has returned: a staged value used later raises."""
        self.__class__ = FinishedStagingTrace

    def program(self, outputs: list[int], out_def: Any, out_types: list[type]) -> Program:
        """The recorded ``Program``."""
        return Program(self.n, self.inputs, self.consts, self.steps, outputs, out_def,
                       out_types)

    def watched_constants(self) -> list[tuple[ndarray, ndarray]]:
        """(the caller's array, the copy the program holds) for each writeable array met
        as a constant that someone besides this recording may hold, and so write in
        place before a replay: an array only the recording still refers to (a temporary
        of a rule, a result NumPy made) is not watched (CPython's reference count tells;
        elsewhere every array is). Its copy holds its bits as first met; a replay finding
        other bits there records anew."""
        return [(orig, snap) for orig, snap in self.snapshots if not _unwritable(orig)]


# With CPython, an array referred to only by the recording (its const_ids and snapshots
# entries, the loop's variable and getrefcount's argument) is private to it; other
# interpreters watch every array. (A base shared by two private views counts as held
# elsewhere: watched, which costs a comparison and is never wrong.)
# From 3.14 the interpreter may not count the references on its own stack, so a count
# could no longer prove an array private (as for reverse.py's elided temporaries).
# Up to 3.10 a Python-to-Python call keeps the caller's stack reference to an argument
# beside the callee's own (3.11 moves it into the new frame): one more there.
_PRIVATE_REFS = ((5 if sys.version_info < (3, 11) else 4)
                 if sys.implementation.name == "cpython" and sys.version_info < (3, 14)
                 else 0)


def _read_only_memory(a: ndarray) -> bool:
    """Whether the memory under ``a`` is owned by a read-only array (writes through no
    view of it are possible)."""
    while isinstance(a.base, ndarray):
        a = a.base
    return a.base is None and not a.flags.writeable


def copy_laid_out(a: ndarray) -> ndarray:
    """A copy of ``a`` with its memory layout (C or Fortran order, or the same strides
    for a strided view): operations on it round as they did on ``a`` (BLAS and SciPy
    take other paths for other layouts)."""
    if a.flags.c_contiguous or a.flags.f_contiguous or not a.size:
        return np.array(a, copy=True, order="K", subok=False)
    lo = hi = 0
    for n, st in zip(a.shape, a.strides, strict=True):
        if st < 0:
            lo += (n - 1) * st
        else:
            hi += (n - 1) * st
    extent = hi - lo + a.itemsize
    if extent > 16 * a.nbytes:  # a sparse view of a large array: compact instead
        return np.array(a, copy=True, order="K", subok=False)
    buf = np.empty(extent, np.uint8)
    out = np.ndarray(a.shape, a.dtype, buffer=buf, offset=-lo, strides=a.strides)
    out[...] = a
    return out


def _unwritable(a: ndarray) -> bool:
    """Whether nobody but the recording can write into ``a``'s memory: the array that
    owns it is read-only, or it and every view on the way to it are referred to only by
    the recording (a view's base by the view)."""
    refs = _PRIVATE_REFS + 1  # (this function's argument)
    private = bool(_PRIVATE_REFS)
    while True:
        if private and sys.getrefcount(a) > refs:
            private = False
        if a.base is None:
            return private or not a.flags.writeable
        if not isinstance(a.base, ndarray):
            return False  # memory of another object (bytes, a buffer): assume shared
        a = a.base
        refs = 3  # the view's .base, this loop's variable, getrefcount's argument


def same_bits(a: ndarray, c: ndarray) -> bool:
    """Whether ``a`` holds exactly the bits of its copy ``c`` (nan and -0.0 included)."""
    if a.shape != c.shape or a.dtype != c.dtype:
        return False
    if a.nbytes <= 4096 or not a.flags.c_contiguous or a.dtype.hasobject:
        return a.tobytes() == c.tobytes()
    return bool(np.array_equal(a.reshape(-1).view(np.uint8), c.reshape(-1).view(np.uint8)))


#: primitives whose result's shape depends on their arguments' values (a mask, a count)
VALUE_SHAPED: set[str] = {"nonzero", "unique", "argwhere", "flatnonzero", "extract",
                          "compress", "trim_zeros", "unique_values", "unique_counts",
                          "unique_inverse", "unique_all"}


def _shape_may_vary(prim: Primitive, vals: list[Any], slots: tuple[int, ...],
                    trace: StagingTrace) -> bool:
    """Whether the output's shape may depend on values: a known value-shaped primitive,
    or a non-elementwise one reading a staged boolean or integer array (a mask, indices,
    repeats)."""
    if prim.elementwise:
        return False
    if prim.name in VALUE_SHAPED:
        return True
    consts = trace.consts
    for v, s in zip(vals, slots, strict=True):
        if s not in consts and type(v) is ndarray and v.dtype.kind in "biu":
            return True
    return False


_CONTAINERS = (tuple, list, dict, slice)


def _holds_staged(v: Any) -> bool:
    t = type(v)
    if t is Staged:
        return True
    if t is tuple or t is list:
        for u in v:
            tu = type(u)
            if tu is Staged or (tu in _CONTAINERS and _holds_staged(u)):
                return True
        return False
    if t is dict:
        return any(_holds_staged(u) for u in v.values())
    if t is slice:
        return _holds_staged(v.start) or _holds_staged(v.stop) or _holds_staged(v.step)
    return False


def _freeze_all(v: Any) -> Any:
    if type(v) is Staged:
        return v.freeze()
    if type(v) in (tuple, list):
        return type(v)(_freeze_all(u) for u in v)
    if type(v) is dict:
        return {k: _freeze_all(u) for k, u in v.items()}
    if type(v) is slice:
        return slice(_freeze_all(v.start), _freeze_all(v.stop), _freeze_all(v.step))
    return v


def _where() -> str | None:
    """The user's line that took a decision on a staged value, as ``file:line: `code```
    (the innermost frame outside dualrev, NumPy and SciPy; each file judged once)."""
    frame = sys._getframe(2) if hasattr(sys, "_getframe") else None
    while frame is not None:
        name = frame.f_code.co_filename
        if not library_file(name):
            line = frame.f_lineno
            text = linecache.getline(name, line).strip()
            return f"{name}:{line}" + (f": `{text}`" if text else "")
        frame = frame.f_back
    return None


class Staged(TracedBase):
    """A value of a ``dualrev.replay`` recording: ``primal`` is its plain value, ``_index``
    its slot in the program. Operations on it are recorded; conversions to Python or plain
    values record a guard. Users meet one only as a non-differentiated argument of a
    replayed transform, where it behaves as the array it holds."""

    __slots__ = ()
    _staged = True

    def __init__(self, primal: Any, trace: StagingTrace, index: int) -> None:
        self.primal = primal
        self._trace = trace
        self._level = trace.level
        self._index = index

    def __repr__(self) -> str:
        return f"Staged({self.primal!r})"

    def freeze(self) -> Any:
        """The plain value, the recording now relying on it exactly ("equal" guard)."""
        p = self.primal
        self._trace.guard(self, "equal", p.copy() if type(p) is ndarray else p)
        return p

    def freeze_finite(self) -> bool:
        """Whether every element is finite, the recording relying on it ("finite")."""
        p = self.primal
        try:
            ok = bool(np.all(np.isfinite(p)))
        except TypeError:
            return True
        self._trace.guard(self, "finite", ok)
        return ok

    # --------------------------------------------------------- conversions: guards
    def __bool__(self) -> bool:
        b = bool(self.primal)
        self._trace.guard(self, "truth", b)
        return b

    def __float__(self) -> float:
        return float(self.freeze())

    def __int__(self) -> int:
        return int(self.freeze())

    def __index__(self) -> int:
        return operator.index(self.freeze())

    def __complex__(self) -> complex:
        return complex(self.freeze())

    def __floor__(self) -> int:
        return int(np.floor(self.freeze()))

    def __ceil__(self) -> int:
        return int(np.ceil(self.freeze()))

    def __trunc__(self) -> int:
        return int(np.trunc(self.freeze()))

    def __round__(self, ndigits: int | None = None) -> Any:
        v = np.asarray(self.freeze())[()]
        return round(v) if ndigits is None else round(v, ndigits)

    def item(self, *args: Any) -> Any:
        return np.asarray(self.freeze()).item(*args)

    def tolist(self) -> Any:
        return np.asarray(self.freeze()).tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> ndarray:
        return np.array(self.freeze(), dtype=dtype, copy=True)

    def tobytes(self, *a: Any, **k: Any) -> Any:
        return np.asarray(self.freeze()).tobytes(*a, **k)

    def __format__(self, spec: str) -> str:
        return format(self.primal, spec)  # printing: happens only while recording



class FinishedStagingTrace(StagingTrace):
    """A staging trace whose recorded call has returned."""

    __slots__ = ()

    def constant(self, value: Any) -> Staged:
        return self.process(None, (), {})  # type: ignore[arg-type]  (raises: it escaped)

    def process(self, prim: Primitive, args: Any, params: dict[str, Any]) -> Any:
        what = "an in-place write" if prim is None else prim.name
        raise ReplayError(f"a value staged by a finished dr.replay recording was used by "
                          f"{what} (it escaped the recorded call)",
                          "do not keep values across calls of a replayed function")

    def guard(self, x: Staged, kind: str, expected: Any) -> None:
        raise ReplayError("a value staged by a finished dr.replay recording was converted "
                          "to a plain value (it escaped the recorded call)",
                          "do not keep values across calls of a replayed function")
