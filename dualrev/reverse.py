"""Reverse mode: the ``Tape`` that records primitives applied to ``Traced`` values, and
its backward pass.

The tape is a flat list in execution order, which is already a topological order, so
the backward pass is one loop over it in reverse: no recursion, whatever the depth.
"""

from __future__ import annotations

import linecache
import sys
from sys import getrefcount
from typing import Any

import numpy as np

from . import config, cotangent
from .batching import Batched, scale, without_derivatives
from .diagnose import user_frame
from .errors import EscapedTracerError, NoDerivativeRule
from .forward import tangent_out
from .primitive import (
    FLOAT64_SCALARS,
    PLAIN_SCALARS,
    Primitive,
    Shaped,
    Tracer,
    apply_plain,
    bind,
    concrete,
    dtype_of,
    is_complex,
    shape_of,
    unbroadcast,
)
from .staging import Staged
from .tracer import TracedBase, new_level, note_finished, note_running

ndarray = np.ndarray
# Reusing temporaries relies on CPython's reference counts counting every holder of an
# array; from 3.14 the interpreter may not count references on its own stack, so the
# test would no longer prove an array private.
_ELIDE = sys.implementation.name == "cpython" and sys.version_info < (3, 14)


class Tape:
    """One reverse-mode transform call: a level and the list of recorded operations.

    Each entry is ``(prim, primals, params, ans, parents)`` where ``parents`` lists
    ``(argument position, entry index, argument shape, kind)`` for the traced arguments
    (kind: what its cotangent must be, see ``cotangent.kind``);
    inputs are entries with ``prim`` None. Of the primals and ``ans`` the entry keeps
    what the primitive's ``saves`` declaration names (a ``Shaped`` stand-in where only
    the shape is read, a ``NotSaved`` one for the rest; see ``Primitive``), or
    everything when it declares nothing.

    ``tape.input(value)`` makes a traced input; ``tape.finish()`` stops recording (a value
    used afterwards raises ``EscapedTracerError``); ``tape.backward(seeds)`` pulls
    cotangents (``{entry index: cotangent}``) back to every entry and returns the list of
    them (None where nothing arrived); ``tape.push(tangents)`` goes forward along the
    recorded edges (a tape with ``keep_all``). The transforms make one tape per call;
    building one by hand is for extensions and tests.

    Args:
        level: the nesting level of the transform call (``dualrev.tracer.new_level()``):
            it keeps nested derivatives apart.
        what: the transform's name, for the escaped-tracer error.
        keep_all: keep every primal and output (not only what the VJP rules declare), so
            that the tape can also be replayed forward (``push``).
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> from dualrev.tracer import new_level
        >>> tape = dr.Tape(new_level())
        >>> x = tape.input(np.array([1.0, 2.0]))
        >>> y = np.sum(np.sin(x) * x)
        >>> tape.finish()
        >>> print(tape.backward({y._index: 1.0})[x._index])   # sin(x) + x cos(x)
        [1.381773 0.077004]
    """

    __slots__ = ("level", "nodes", "what", "copies", "keep_all")
    finished = False

    def __init__(self, level: int, what: str = "a reverse-mode transform",
                 keep_all: bool = False) -> None:
        self.level = level
        note_running(self)
        self.nodes: list[tuple[Any, ...]] = []
        self.what = what  # the transform's name, for the escaped-tracer error
        # keep every primal and output, for the JVP rules of a forward replay (push)
        self.keep_all = keep_all
        # id -> (caller's array, the tape's copy of it), see keep_copy
        self.copies: dict[int, tuple[ndarray, ndarray]] = {}

    def keep_copy(self, a: ndarray) -> ndarray:
        """A private copy of the caller's array ``a``, for a VJP rule to read later: the
        caller may rewrite ``a`` in place (a work buffer) before the backward pass. The
        same unchanged array (a weight matrix used at every step of a loop) shares one
        copy; "unchanged" is checked bit for bit, which reads ``a`` but allocates
        nothing."""
        hit = self.copies.get(id(a))
        if hit is not None and hit[0] is a and _same_bits(a, hit[1]):
            return hit[1]
        c = a.copy()
        if a.flags.c_contiguous and a.nbytes % 8 == 0:
            self.copies[id(a)] = (a, c)
        return c

    def finish(self) -> None:
        """Stop recording: the transform's function has returned. A value it traced that
        is used later (it escaped) raises instead of growing a tape nobody will play back.
        Switching the class costs nothing per operation, unlike a check in ``process``."""
        self.__class__ = FinishedTape
        note_finished(self)
        self.copies = {}

    def input(self, value: Any) -> Traced:
        """A new traced input on this tape."""
        self.nodes.append((None, (), None, value, ()))
        return Traced(value, self, len(self.nodes) - 1)

    def process(self, prim: Primitive, args: Any, params: dict[str, Any]) -> Any:
        if prim.vjps is None:
            raise NoDerivativeRule(prim.name, "It has no VJP (reverse-mode) rule.")
        level = self.level
        vjps = prim.vjps
        primals = []
        parents = []  # (position, entry, shape, cotangent kind) of this tape's arguments
        plain = True  # no argument traced at an outer level either
        i = 0
        for a in args:
            if type(a) is Traced and a._level == level:
                p = a.primal
                if vjps[i] is not None:
                    tp = type(p)
                    if tp in PLAIN_SCALARS:  # the common cases inline (kind REAL: True)
                        parents.append((i, a._index, (), True))
                    elif tp is ndarray and p.dtype.char == "d":
                        parents.append((i, a._index, p.shape, True))
                    elif tp is Staged and _float64(p.primal):  # (under dr.replay)
                        parents.append((i, a._index, shape_of(p), True))
                    else:
                        parents.append((i, a._index, shape_of(p), cotangent.kind(p)))
                a = p
            if plain and isinstance(a, Tracer):
                plain = False
            primals.append(a)
            i += 1
        if prim.custom is not None:  # a custom_vjp: fwd gives the output and residuals
            ans, params = prim.custom.on_tape(self, primals, args, params)
        else:
            ans = apply_plain(prim, primals, params) if plain else bind(prim, primals, params)
        if not parents:
            return ans
        # What the entry keeps (inline: this runs once per recorded operation): what the
        # primitive's ``saves`` names for the traced arguments, so intermediates die as
        # early as in NumPy, and a private copy of each plain array the caller still
        # holds (it may be rewritten in place before the backward pass: a work buffer).
        nodes = self.nodes
        key = parents[0][0] if len(parents) == 1 else tuple(p[0] for p in parents)
        plan = (None if self.keep_all or prim.saves is None
                else prim._plans.get(key) or prim.keep_plan(key))
        if plan is None:
            kept = [self.keep_copy(p) if type(p) is ndarray and p is a else p
                    for p, a in zip(primals, args, strict=True)]
            kept_ans = ans
        else:
            width = len(plan) - 1
            kept = []
            for j, p in enumerate(primals):
                k = plan[j + 1] if j < width else True
                if k is True:
                    kept.append(self.keep_copy(p) if type(p) is ndarray and p is args[j]
                                else p)
                elif k is Shaped:
                    # An input of the tape lives on anyway, and a scalar costs less than
                    # a stand-in: keep those themselves.
                    arg = args[j]
                    if type(p) in PLAIN_SCALARS or (type(arg) is Traced and arg._level == level
                                                    and nodes[arg._index][0] is None):
                        kept.append(p)
                    else:
                        kept.append(Shaped(p))
                else:
                    kept.append(k)  # NotSaved: a rule reading it raises
            k = plan[0]
            kept_ans = (ans if k is True else k if k is not Shaped
                        else ans if type(ans) in PLAIN_SCALARS else Shaped(ans))
        nodes.append((prim, kept, params, kept_ans, parents))
        return Traced(ans, self, len(nodes) - 1)


    def backward(self, seeds: dict[int, Any], keep: bool = False) -> list[Any]:
        """Pull cotangents from ``seeds`` (entry index -> cotangent) back to every entry.
        A batch of cotangents (jacrev) is a ``Batched`` seed: the rules see one.

        Returns the list of accumulated cotangents (None where nothing arrived); the
        inputs' entries hold the gradients. Without ``keep`` each entry is released as soon
        as it has been processed, so intermediates are freed during the pass, and the tape
        is empty afterwards (entries no cotangent reached are dropped too).
        """
        nodes = self.nodes
        n = len(nodes)
        cts: list[Any] = [None] * n
        # owned[i]: cts[i] is an array this pass allocated, so adding into it in place
        # cannot change a value anyone else holds.
        owned = [False] * n
        for i, g in seeds.items():
            cotangent.accumulate(cts, owned, i, g)
        fast = config.SHORTCUTS
        for i in range(n - 1, -1, -1):
            g = cts[i]
            if g is None:
                continue
            prim, primals, params, ans, parents = nodes[i]
            if prim is None:
                continue  # an input: its cotangent is a result
            if not keep:
                nodes[i] = _RELEASED
            cts[i] = None
            if fast:
                scatter = prim.vjp_add
                # pull's commonest cases, inline: a float64 cotangent, a float64 result,
                # or jacrev's batch of float64 cotangents
                tg = type(g)
                plain = (tg is ndarray and g.dtype.char == "d") or tg in FLOAT64_SCALARS
                batch = (not plain and tg is Batched and type(g.primal) is ndarray
                         and g.primal.dtype.char == "d")
                partials = prim.partials
            else:
                scatter = None
                plain = batch = False
            for argpos, pid, shape, kind in parents:
                if scatter is not None and kind is cotangent.REAL and (
                        cts[pid] is None or owned[pid]) and argpos == prim.vjp_add_arg:
                    # the cotangent scattered straight into the pass's buffer
                    acc = (scatter(cts[pid], g, ans, *primals, g_owned=owned[i], **params)
                           if prim.vjp_add_owned else
                           scatter(cts[pid], g, ans, *primals, **params))
                    if acc is not NotImplemented:
                        cts[pid] = acc
                        owned[pid] = True
                        continue
                if batch and kind is cotangent.REAL:
                    c = _pull_batch(prim, argpos, g, ans, primals, params, shape)
                elif not plain or kind is not cotangent.REAL:
                    c = pull(prim, argpos, g, ans, primals, params, shape, kind, fast)
                elif partials is not None:
                    d = partials[argpos](ans, *primals)
                    if type(d) is ndarray and d.dtype.char == "d":
                        if (_ELIDE and getrefcount(d) <= 2 and d.base is None
                                and tg is ndarray and d.shape == g.shape
                                and d.flags.writeable):
                            c = np.multiply(g, d, out=d)  # d is a temporary: see pull
                        else:
                            c = g * d
                        if c.shape != shape:
                            c = unbroadcast(c, shape)
                    else:
                        c = _fit(g * d, shape, kind)
                    del d
                else:
                    c = prim.vjps[argpos](g, ans, *primals, **params)  # type: ignore[index]
                    if type(c) is ndarray and c.dtype.char == "d":
                        if prim.elementwise and c.shape != shape:
                            c = unbroadcast(c, shape)
                    else:
                        c = _finish(prim, c, shape, kind)
                if cts[pid] is None:
                    cts[pid] = c
                else:
                    cotangent.accumulate(cts, owned, pid, c)
        if not keep:
            # An escaped tracer keeps its tape alive; it must not keep the values too.
            nodes.clear()
        return cts


    def push(self, tangents: dict[int, Any]) -> list[Any]:
        """Forward along the recorded edges: each entry's tangent from its arguments' by
        the JVP rules, from ``tangents`` (input entry -> tangent, a batch of them when
        ``Batched``). Needs a tape that kept everything (``keep_all``); a ``custom_vjp``
        entry is pushed through its transposed backward rule, from the residuals kept
        with it."""
        ts: list[Any] = [None] * len(self.nodes)
        for i, t in tangents.items():
            ts[i] = t
        for i, (prim, primals, params, ans, parents) in enumerate(self.nodes):
            if prim is None:
                continue
            args: list[Any] = [None] * len(primals)
            reached = False
            for argpos, pid, _, _ in parents:
                if ts[pid] is not None:
                    args[argpos] = ts[pid]
                    reached = True
            if not reached:
                continue
            ts[i] = tangent_out(prim, args, ans, list(primals), params)
        return ts


def pull(prim: Primitive, argpos: int, g: Any, ans: Any, primals: list[Any],
         params: dict[str, Any], shape: tuple[int, ...], kind: Any,
         fast: bool = True) -> Any:
    """The cotangent of argument ``argpos`` of one recorded operation, from the output's
    ``g``: summed back to the argument's ``shape`` where the primitive broadcast it, and
    of the argument's ``kind`` (see ``cotangent.kind``)."""
    partials = prim.partials if fast else None
    if partials is not None:  # elementwise: the cotangent times the partial
        d = partials[argpos](ans, *primals)
        if (_ELIDE and type(d) is ndarray and getrefcount(d) <= 2 and d.base is None
                and type(g) is ndarray and d.shape == g.shape and d.dtype == g.dtype
                and d.flags.writeable):
            # d is a temporary nobody else can see (NumPy's own temporary elision test):
            # multiply into it instead of allocating again; g * d in the order of the
            # general branch below (a complex product with FMA is not commutative to
            # the bit, and a dr.replay recording takes the general branch)
            c = np.multiply(g, d, out=d)
        elif type(g) is Batched and not isinstance(d, Tracer):
            c = scale(g, d)  # a batch of cotangents times a plain partial
        else:
            c = g * d
        del d
        return _fit(c, shape, kind)
    return _finish(prim, prim.vjps[argpos](g, ans, *primals, **params),  # type: ignore[index]
                   shape, kind)


def _pull_batch(prim: Primitive, argpos: int, g: Batched, ans: Any, primals: list[Any],
                params: dict[str, Any], shape: tuple[int, ...]) -> Any:
    """``pull`` for a batch of float64 cotangents of a real argument (jacrev's pass),
    with the float64 results' checks inline."""
    partials = prim.partials
    if partials is not None:
        d = partials[argpos](ans, *primals)
        if isinstance(d, Tracer):
            return _fit(g * d, shape, cotangent.REAL)
        c = scale(g, d)
        raw = c.primal
    else:
        c = prim.vjps[argpos](g, ans, *primals, **params)  # type: ignore[index]
        if type(c) is not Batched or type(raw := c.primal) is not ndarray:
            return _finish(prim, c, shape, cotangent.REAL)
    if raw.dtype.kind == "c":  # a complex partial of a real argument
        return _finish(prim, c, shape, cotangent.REAL)
    if prim.elementwise and raw.shape[1:] != shape:
        return unbroadcast(c, shape)
    return c


def _finish(prim: Primitive, c: Any, shape: tuple[int, ...], kind: Any) -> Any:
    """A VJP rule's result ``c`` as the cotangent of an argument of ``shape`` and
    ``kind``: an elementwise primitive's summed over the axes it broadcast, projected."""
    if prim.elementwise and shape_of(c) != shape:
        c = unbroadcast(c, shape)
    if kind is True and type(c) is ndarray and c.dtype.kind != "c":
        return c  # real already: no projection
    return cotangent.project(c, kind)


def _fit(c: Any, shape: tuple[int, ...], kind: Any) -> Any:
    """An elementwise rule's product ``c`` as the cotangent of an argument of ``shape``
    and ``kind``: summed over the axes the primitive broadcast, projected."""
    tc = type(c)
    if tc is ndarray:
        if c.shape != shape:
            c = unbroadcast(c, shape)
        if kind is cotangent.REAL and c.dtype.kind != "c":
            return c  # the common case, without a call
    elif tc in PLAIN_SCALARS:
        if shape == ():
            return c if kind is True else cotangent.project(c, kind)
        c = unbroadcast(c, shape)
    elif tc is Staged and kind is True and _float64(c.primal):  # (under dr.replay)
        return c if shape_of(c) == shape else unbroadcast(c, shape)
    elif shape_of(c) != shape:
        c = unbroadcast(c, shape)
    return cotangent.project(c, kind)


def _float64(p: Any) -> bool:
    """Whether the plain ``p`` is a float64 scalar or array (a real cotangent kind)."""
    return type(p) in FLOAT64_SCALARS or (type(p) is ndarray and p.dtype.char == "d")


_RELEASED = (None, (), None, None, ())
#: the params slot of a constant's entry (an input's holds None): no derivative enters
#: there (dualrev/buffers.py proves values computed from constants alone plain by it)
CONSTANT = "constant"


def _same_bits(a: ndarray, c: ndarray) -> bool:
    """Whether the C-contiguous ``a`` still holds exactly the bits of its copy ``c`` (nan
    and -0.0 included, which a == comparison would not tell apart)."""
    return (a.flags.c_contiguous and a.shape == c.shape and a.dtype == c.dtype
            and bool(np.array_equal(a.reshape(-1).view(np.uint64),
                                    c.reshape(-1).view(np.uint64))))


class FinishedTape(Tape):
    """A tape whose transform has stopped recording; its backward pass still runs."""

    __slots__ = ()
    finished = True

    def input(self, value: Any) -> Traced:
        raise EscapedTracerError(self.what, "a new input")

    def process(self, prim: Primitive, args: Any, params: dict[str, Any]) -> Any:
        raise EscapedTracerError(self.what, prim.name)


class Traced(TracedBase):
    """A reverse-mode traced value: its ``primal`` value and its entry on a ``Tape``.

    Inside ``grad``, ``vjp``, ``jacrev`` and ``jacobian`` the differentiated arguments are
    ``Traced`` values; every NumPy call on them records an entry on the tape and returns a
    new ``Traced``. They behave like the arrays they hold (``shape``, ``ndim``, ``dtype``,
    ``len``, indexing, arithmetic, NumPy functions and methods) but cannot be converted to
    plain values (``float(x)``, ``np.asarray(x)``: ``TracerConversionError``) or written in
    place (``InPlaceError``). Formatting one (``f"{x}"``, ``print``) shows its value. Users
    do not create them: ``Tape.input`` does.

    Args:
        primal: the value (one nesting level down: a plain array, or a traced value of an
            outer transform).
        tape: the ``Tape`` it is recorded on (its level is the value's level).
        index: its entry on the tape (the cotangent ``Tape.backward`` returns at that
            position is its own).
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> def f(x):
        ...     print(repr(x), x.shape)
        ...     return x ** 2
        >>> print(dr.grad(f)(3.0))
        Traced(3.0) ()
        6.0
    """

    __slots__ = ()  # _index: a slot of Tracer

    def __init__(self, primal: Any, tape: Tape, index: int) -> None:
        self.primal = primal
        self._trace = tape
        self._level = tape.level
        self._index = index

    def __repr__(self) -> str:
        return f"Traced({self.primal!r})"


def linear_transpose(linear: Any, x: Any, ct: Any) -> Any:
    """The cotangent of the input of the linear map ``linear`` (on values shaped like
    ``x``) for the output cotangent ``ct``: ``linear`` is recorded once on a zero input
    and the tape played back from ``ct``, a batched one included. A complex ``x`` keeps
    the imaginary part of its cotangent (a real input takes the real part)."""
    dt = np.result_type(dtype_of(x), np.float64) if is_complex(x) else np.float64
    tape = Tape(new_level(), "a transposed JVP rule")
    t = tape.input(np.zeros(shape_of(x), dt))
    entry = t._index  # read now: linear may write into t, rebinding it
    try:
        out = linear(t)
    finally:
        tape.finish()
    g = None
    if type(out) is Traced and out._trace is tape:
        g = tape.backward({out._index: ct})[entry]
    return np.zeros(shape_of(x), dt) if g is None else g


# ------------------------------------------------------------------ careful replays
# A transform whose result holds nan or inf records f again on a CarefulTape and plays
# it back with strong zeros (see docs/design.md, "Non-finite derivatives"); nothing here
# runs on the normal path.

def _plain_value(v: Any) -> Any:
    """The plain NumPy value under every level of tracing (batches keep their axes; a
    dr.replay recording relies on it: an "equal" guard)."""
    return concrete(v)


def all_finite(v: Any) -> bool:
    """Whether the plain value under ``v`` (any tracing levels) is finite everywhere (a
    staged value records the answer as a guard of its dualrev.replay recording)."""
    while isinstance(v, Tracer):
        if v._staged:
            return v.freeze_finite()  # type: ignore[attr-defined]
        v = v.primal
    tv = type(v)
    if tv in FLOAT64_SCALARS:
        return v - v == 0.0  # False for inf and nan, without a call
    if tv is ndarray:
        # (a sum or a dot would be cheaper, but warns on inf - inf and on overflow)
        return bool(np.isfinite(v).all()) if v.dtype.kind in "fc" else True
    try:
        return bool(np.all(np.isfinite(v)))
    except TypeError:  # not numeric (a stand-in, an object array): nothing to say
        return True


def _probe(c: Any, shape: tuple[int, ...]) -> Any:
    """A reach probe from a rule's result ``c`` on probes: nan where ``c`` is not exactly
    zero (nan and inf included), 0 where it is, in ``shape`` (an elementwise primitive's
    broadcast summed away). Derivative levels are dropped and batch levels kept, so a
    batch of (co)tangents (jacfwd, jacrev, vmap) has its own reach per element."""
    c = without_derivatives(c)
    m = c != 0
    if shape_of(m) != shape:
        m = unbroadcast(np.where(m, 1.0, 0.0), shape) != 0
    return np.where(m, np.nan, 0.0)


def _everywhere(m: Any) -> bool:
    return bool(np.all(_plain_value(m)))


class CarefulTape(Tape):
    """A tape for the careful replay of a transform whose result was not finite: it
    keeps every value and each operation's source line (the innermost frame outside
    dualrev, NumPy and SciPy), and its ``backward`` and ``push`` apply strong zeros and
    note where a derivative first became non-finite (``culprit``)."""

    __slots__ = ("lines", "culprit", "mode")

    def __init__(self, level: int, what: str = "a reverse-mode transform",
                 keep_all: bool = True) -> None:
        super().__init__(level, what, True)
        self.lines: dict[int, tuple[str, int]] = {}
        #: (primitive name, entry, cause: see _cause) where a derivative first became
        #: non-finite from finite ones, or None
        self.culprit: tuple[str, int, str] | None = None
        self.mode = "reverse"  # of the last careful pass: "reverse" or "forward"

    def finish(self) -> None:
        self.__class__ = FinishedCarefulTape
        note_finished(self)
        self.copies = {}

    def process(self, prim: Primitive, args: Any, params: dict[str, Any]) -> Any:
        n = len(self.nodes)
        out = Tape.process(self, prim, args, params)
        if len(self.nodes) > n:
            frame = user_frame()
            if frame is not None:
                self.lines[n] = (frame.f_code.co_filename, frame.f_lineno)
        return out

    def where(self, entry: int) -> str | None:
        """The user's line that recorded ``entry``, as ``file:line: `source```."""
        hit = self.lines.get(entry)
        if hit is None:
            return None
        text = linecache.getline(hit[0], hit[1]).strip()
        return f"{hit[0]}:{hit[1]}" + (f": `{text}`" if text else "")

    # -- reach: which elements some selection cuts off -----------------------------
    def reach_back(self, seeds: dict[int, Any]) -> tuple[list[Any], dict[Any, Any]]:
        """Where cotangents can be nonzero at all: probes (nan where the seed is nonzero,
        0 elsewhere) pulled back, an elementwise partial counted as nonzero (a zero
        partial is a numeric zero, not a selection), every other rule run on the probe:
        only a selection (``np.where``, indexing, ``tril``) turns nan into an exact 0.
        Returns a mask per entry and one per edge ``(entry, argument position)``: a
        contribution is cut where its own edge does not reach, even where the receiving
        entry is reached by another edge."""
        nodes = self.nodes
        r: list[Any] = [None] * len(nodes)
        edges: dict[Any, Any] = {}
        for i, g in seeds.items():
            r[i] = _probe(g, shape_of(nodes[i][3]))
        for i in range(len(nodes) - 1, -1, -1):
            probe = r[i]
            if probe is None:
                continue
            r[i] = np.isnan(probe)
            prim, primals, params, ans, parents = nodes[i]
            if prim is None:
                continue
            for argpos, pid, shape, _ in parents:
                try:
                    c = probe if prim.partials is not None else prim.vjps[argpos](
                        probe, ans, *primals, **params)
                    p = _probe(c, shape)
                except Exception:  # noqa: BLE001  (a rule that cannot take the probe)
                    p = np.full(shape, np.nan)
                edges[i, argpos] = np.isnan(p)
                r[pid] = p if r[pid] is None else r[pid] + p
        return r, edges

    def reach_forward(self, seeds: dict[int, Any]) -> tuple[list[Any], dict[Any, Any]]:
        """Where tangents can be nonzero at all (``reach_back`` forward, from the seeds'
        nonzero elements): a mask per entry and per edge ``(entry, argument position)``
        (of the entry's shape)."""
        nodes = self.nodes
        r: list[Any] = [None] * len(nodes)
        edges: dict[Any, Any] = {}
        for i, t in seeds.items():
            r[i] = _probe(t, shape_of(nodes[i][3]))
        for i, (prim, primals, params, ans, parents) in enumerate(nodes):
            if prim is None:
                if r[i] is not None:
                    r[i] = np.isnan(r[i])
                continue
            shape = shape_of(ans)
            m = None
            for argpos, pid, _, _ in parents:
                if r[pid] is None or (prim.jvps is not None and prim.jvps[argpos] is None):
                    continue
                a = np.where(r[pid], np.nan, 0.0)
                try:
                    if prim.partials is not None:
                        t = a + np.zeros(shape)
                    else:
                        args: list[Any] = [None] * len(primals)
                        args[argpos] = a
                        t = tangent_out(prim, args, ans, list(primals), params)
                    e = None if t is None else np.isnan(_probe(t, shape))
                except Exception:  # noqa: BLE001
                    e = np.ones(shape, bool)
                if e is None:
                    continue
                edges[i, argpos] = e
                m = e if m is None else m | e
            r[i] = m
        return r, edges

    # -- the careful passes --------------------------------------------------------
    def backward(self, seeds: dict[int, Any], keep: bool = False) -> list[Any]:
        self.mode = "reverse"
        reach, edges = self.reach_back(seeds)
        nodes = self.nodes
        n = len(nodes)
        cts: list[Any] = [None] * n
        source: list[Any] = [None] * n  # where a non-finite cotangent came from
        for i, g in seeds.items():
            cts[i] = g
        for i in range(n - 1, -1, -1):
            g = cts[i]
            if g is None:
                continue
            m = reach[i]
            if m is None:
                m = np.zeros(shape_of(nodes[i][3]), bool)
            if not _everywhere(m):
                g = cts[i] = np.where(m, g, 0.0)  # strong zeros
            if self.culprit is None and source[i] is not None and not all_finite(g):
                self.culprit = source[i]
            prim, primals, params, ans, parents = nodes[i]
            if prim is None:
                continue
            finite = all_finite(g)
            for argpos, pid, shape, kind in parents:
                c = pull(prim, argpos, g, ans, primals, params, shape, kind, False)
                e = edges.get((i, argpos))
                if e is not None and not _everywhere(e):
                    c = np.where(e, c, 0.0)  # strong zeros of this edge
                if finite and source[pid] is None and not all_finite(c):
                    source[pid] = (prim.name, i, _cause(prim, ans, g, c))
                cts[pid] = c if cts[pid] is None else cts[pid] + c
        return cts

    def push(self, tangents: dict[int, Any]) -> list[Any]:
        self.mode = "forward"
        reach, edges = self.reach_forward(tangents)
        ts: list[Any] = [None] * len(self.nodes)
        for i, t in tangents.items():
            ts[i] = t
        for i, (prim, primals, params, ans, parents) in enumerate(self.nodes):
            if prim is None:
                continue
            finite = True
            t = None
            zero = False
            if prim.custom is not None:
                # a custom_vjp: its transposed bwd takes every argument's tangent in one
                # pass (opaque to the edges' strong zeros, like its reverse rule)
                args = [None] * len(primals)
                for argpos, pid, _, _ in parents:
                    args[argpos] = ts[pid]
                if any(a is not None for a in args):
                    finite = all(a is None or all_finite(a) for a in args)
                    t = tangent_out(prim, args, ans, list(primals), params)
                    if self.culprit is None and finite and not all_finite(t):
                        self.culprit = (prim.name, i, _cause(prim, ans, None, t))
                    ts[i] = t
                continue
            for argpos, pid, _, _ in parents:
                a = ts[pid]
                if a is None:
                    continue
                finite = finite and all_finite(a)
                args: list[Any] = [None] * len(primals)
                args[argpos] = a
                # one argument at a time, so that each edge's strong zeros apply to its
                # own contribution
                c = tangent_out(prim, args, ans, list(primals), params)
                if c is None:
                    continue
                e = edges.get((i, argpos))
                if e is None:
                    continue
                if not _everywhere(e):
                    c = np.where(e, c, 0.0)
                zero = zero or (not all_finite(c) and _cause(prim, ans, a, c) == "zero")
                t = c if t is None else t + c
            if self.culprit is None and finite and t is not None and not all_finite(t):
                self.culprit = (prim.name, i, "zero" if zero else _cause(prim, ans, None, t))
            ts[i] = t
        return ts


def _cause(prim: Primitive, ans: Any, g: Any, c: Any) -> str:
    """Why an operation's derivative ``c`` (from the finite (co)tangent ``g``) is not
    finite: ``"overflow"`` (its value is not finite either), ``"zero"`` (an elementwise
    rule's non-finite element where ``g`` is exactly 0: 0 * inf) or ``"singular"``."""
    if not all_finite(ans):
        return "overflow"
    if g is None or not prim.elementwise:
        return "singular"
    gv = np.asarray(_plain_value(g))
    bad = ~np.isfinite(np.asarray(_plain_value(c)))
    try:
        shape = np.broadcast_shapes(gv.shape, bad.shape)
        hit = np.any(np.broadcast_to(gv == 0, shape) & np.broadcast_to(bad, shape))
    except ValueError:
        hit = np.any(gv == 0)
    return "zero" if hit else "singular"


class FinishedCarefulTape(FinishedTape, CarefulTape):
    """A careful tape whose transform has stopped recording (FinishedTape's refusals,
    CarefulTape's backward and forward passes)."""

    __slots__ = ()
