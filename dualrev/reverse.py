"""Reverse mode: the ``Tape`` that records primitives applied to ``Traced`` values as a
program of named entries, and the one walker that runs it backward.

A tape's ``nodes`` are ``Entry`` objects in execution order, which is already a
topological order: an operation (its primitive, the values its rules keep, its static
parameters, its output and its ``edges``: one per traced argument, ``(argument position,
source entry, shape, cotangent kind)``), an ``Input`` or a ``Constant``. Every reverse
pass is ``backward_pass``, one loop over the entries in reverse (no recursion, whatever
the depth): the gradient, jacrev's batch of cotangents, the careful replays and the
drawing (the last two through a ``Watch``); every forward pass over a tape is
``forward_pass``. How an operation's cotangent is pulled is its primitive's
``strategy``, chosen when the primitive is declared (primitive.py), not per call.
"""

from __future__ import annotations

import linecache
import sys
from sys import getrefcount
from typing import Any

import numpy as np

from . import config, cotangent
from .batching import Batched, scale, without_derivatives
from .debug import check_output, in_rules, rules
from .diagnose import user_frame
from .errors import EscapedTracerError, NoDerivativeRule
from .forward import tangent_out
from .primitive import (
    FLOAT64_SCALARS,
    PARTIALS,
    PLAIN_SCALARS,
    RULE,
    Primitive,
    Shaped,
    Trace,
    Tracer,
    bind,
    concrete,
    dtype_of,
    is_complex,
    shape_of,
    unbroadcast,
)
from .staging import Staged
from .tracer import (
    DRAWING,
    TracedBase,
    enter_pass,
    exit_pass,
    new_level,
    note_finished,
    note_running,
)

ndarray = np.ndarray
# Reusing temporaries relies on CPython's reference counts counting every holder of an
# array; from 3.14 the interpreter may not count references on its own stack, so the
# test would no longer prove an array private.
_ELIDE = sys.implementation.name == "cpython" and sys.version_info < (3, 14)


#: an edge of an entry: ``(argument position, source entry, the argument's shape, the
#: kind its cotangent must be: see cotangent.kind)``, one per traced argument whose
#: derivative is not declared zero; a plain tuple, unpacked by these names
Edge = tuple[int, int, tuple[int, ...], Any]


class Entry:
    """One recorded operation of a ``Tape``.

    Attributes:
        prim: the primitive applied.
        kept: the positional arguments as the VJP rules will see them: of the primals
            what the primitive's ``saves`` declaration names (a ``Shaped`` stand-in where
            only the shape is read, a ``NotSaved`` one for the rest; see ``Primitive``),
            or all of them when it declares nothing; a private copy of a plain array the
            caller may rewrite.
        params: the static keyword parameters.
        out: the output, or what of it the declaration keeps.
        edges: one ``Edge`` per traced argument: where its cotangent goes.

    ``Input`` and ``Constant`` entries (``kind`` tells them apart) have no primitive and
    no edges: a cotangent arriving there is a result, or dropped.
    """

    __slots__ = ("prim", "kept", "params", "out", "edges")
    #: "op", "input", "constant", or "released" (dropped by a backward pass)
    kind = "op"

    def __init__(self, prim: Primitive | None, kept: Any, params: Any, out: Any,
                 edges: Any) -> None:
        self.prim = prim
        self.kept = kept
        self.params = params
        self.out = out
        self.edges = edges

    def __repr__(self) -> str:
        what = self.prim.name if self.prim is not None else self.kind
        return f"<tape entry {what} <- {[e[1] for e in self.edges]}>"


class Input(Entry):
    """A traced input of the tape: its value; the gradient arrives here."""

    __slots__ = ()
    kind = "input"

    def __init__(self, value: Any) -> None:
        self.prim = None
        self.kept = ()
        self.params = None
        self.out = value
        self.edges = ()


class Constant(Input):
    """A value of the tape that carries no derivative at its level (a buffer made
    inside the function, a constant a write rebinds a traced value to): dualrev/buffers.py
    proves values computed from constants alone plain by it."""

    __slots__ = ()
    kind = "constant"


class Released(Input):
    """What a backward pass without ``keep`` leaves where it has processed an entry."""

    __slots__ = ()
    kind = "released"


_RELEASED = Released(None)
_new_entry = object.__new__


class Tape(Trace):
    """One reverse-mode transform call: a level and its program, ``nodes``, the list of
    recorded ``Entry`` objects (operations, inputs, constants) in execution order.

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
        self.nodes: list[Entry] = []
        self.what = what  # the transform's name, for the escaped-tracer error
        # keep every primal and output, for the JVP rules of a forward replay (push)
        self.keep_all = keep_all
        # id -> (caller's array, the tape's copy of it), see keep_copy
        self.copies: dict[int, tuple[ndarray, ndarray]] = {}
        if DRAWING[0] and type(self) is Tape:
            self.__class__ = _AnnouncedTape

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
        self.nodes.append(Input(value))
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
        elif not plain:
            ans = bind(prim, primals, params)
        else:  # apply_plain, inline: this runs once per recorded operation
            scalar = prim.fast_scalar
            if scalar is None:
                ans = prim.impl(*primals, **params)
            else:
                for p in primals:
                    if type(p) not in PLAIN_SCALARS:
                        ans = prim.impl(*primals, **params)
                        break
                else:
                    try:
                        ans = scalar(*primals)
                    except (ArithmeticError, ValueError):  # NumPy's inf/nan (and warning)
                        ans = prim.impl(*primals, **params)
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
                                                    and nodes[arg._index].prim is None):
                        kept.append(p)
                    else:
                        kept.append(Shaped(p))
                else:
                    kept.append(k)  # NotSaved: a rule reading it raises
            k = plan[0]
            kept_ans = (ans if k is True else k if k is not Shaped
                        else ans if type(ans) in PLAIN_SCALARS else Shaped(ans))
        # Entry(...) without the __init__ call (a third of its cost on CPython 3.11)
        entry = _new_entry(Entry)
        entry.prim = prim
        entry.kept = kept
        entry.params = params
        entry.out = kept_ans
        entry.edges = parents
        nodes.append(entry)
        out = _new_entry(Traced)  # Traced(ans, self, len(nodes) - 1) likewise (its __init__)
        out.primal = ans
        out._trace = self
        out._level = level
        out._index = len(nodes) - 1
        return out


    def backward(self, seeds: dict[int, Any], keep: bool = False) -> list[Any]:
        """Pull cotangents from ``seeds`` (entry index -> cotangent) back to every entry.
        A batch of cotangents (jacrev) is a ``Batched`` seed: the rules see one.

        Returns the list of accumulated cotangents (None where nothing arrived); the
        inputs' entries hold the gradients. Without ``keep`` each entry is released as soon
        as it has been processed, so intermediates are freed during the pass, and the tape
        is empty afterwards (entries no cotangent reached are dropped too).
        """
        if DRAWING[0]:  # a drawing records: it reads the pass
            enter_pass(self, "backward")
            try:
                return backward_pass(self.nodes, seeds, keep)
            finally:
                exit_pass()
        return backward_pass(self.nodes, seeds, keep)

    def push(self, tangents: dict[int, Any]) -> list[Any]:
        """Forward along the recorded edges: each entry's tangent from its arguments' by
        the JVP rules, from ``tangents`` (input entry -> tangent, a batch of them when
        ``Batched``). Needs a tape that kept everything (``keep_all``); a ``custom_vjp``
        entry is pushed through its transposed backward rule, from the residuals kept
        with it."""
        if DRAWING[0]:
            enter_pass(self, "push")
            try:
                return forward_pass(self.nodes, tangents)
            finally:
                exit_pass()
        return forward_pass(self.nodes, tangents)

    # ---------------------------------------------------------- asked of every Trace
    def constant(self, value: Any) -> Traced:
        """``value`` as an entry of this tape no input reaches (``Trace.constant``)."""
        self.nodes.append(Constant(value))
        return Traced(value, self, len(self.nodes) - 1)

    def reaches_no_input(self, index: int) -> bool:
        """Whether no input of this tape reaches its entry ``index``: the value there is
        computed from the tape's constants alone (a walk up its arguments' entries, only
        at a conversion: dualrev/buffers.py)."""
        nodes = self.nodes
        stack = [index]
        seen = set()
        while stack:
            i = stack.pop()
            if i in seen:
                continue
            seen.add(i)
            if i >= len(nodes):
                return False
            entry = nodes[i]
            if entry.prim is None:
                if type(entry) is not Constant:  # an input (or an entry already released)
                    return False
                continue
            stack.extend(source for _, source, _, _ in entry.edges)
        return True


# ------------------------------------------------------------------ the one walker

class Watch:
    """What a reverse or forward pass that is not the plain one does at each entry, for
    ``backward_pass`` and ``forward_pass``: the careful replays (strong zeros, the
    culprit) and the drawing (each edge's contribution) subclass it. Under a watch the
    backward pass neither scatters into nor adds in place into a contribution (a watch
    may keep it) and keeps every entry and cotangent."""

    def enter(self, i: int, entry: Entry, g: Any) -> Any:
        """The cotangent entry ``i`` passes on (``g``: what arrived); inputs too."""
        return g

    def edge(self, i: int, entry: Entry, argpos: int, pid: int, g: Any,
             shape: tuple[int, ...], kind: Any) -> Any:
        """The contribution of entry ``i``'s cotangent ``g`` to its argument ``argpos``
        (entry ``pid``): by default the primitive's own strategy."""
        return _PULLS[entry.prim.strategy](entry.prim, argpos, g, entry.out,  # type: ignore[union-attr]
                                           entry.kept, entry.params, shape, kind)

    def step(self, i: int, entry: Entry, tangents: list[Any]) -> Any:
        """Forward: entry ``i``'s tangent from its arguments' (None where absent)."""
        return tangent_out(entry.prim, tangents, entry.out, list(entry.kept),  # type: ignore[arg-type]
                           entry.params)


def backward_pass(nodes: list[Entry], seeds: dict[int, Any], keep: bool = False,
                  watch: Watch | None = None) -> list[Any]:
    """The reverse walker: cotangents from ``seeds`` (entry index -> cotangent, a
    ``Batched`` one for jacrev's batch) pulled back along ``nodes``' edges, each
    operation by its primitive's strategy (``Primitive.strategy``), or by ``watch``.
    Returns one accumulated cotangent per entry (None where nothing arrived). Without
    ``keep`` (and without a watch) each entry is released once processed and the list
    is emptied at the end (see ``Tape.backward``)."""
    n = len(nodes)
    cts: list[Any] = [None] * n
    # owned[i]: cts[i] is an array this pass allocated, so adding into it in place
    # cannot change a value anyone else holds.
    owned = [False] * n
    for i, g in seeds.items():
        cotangent.accumulate(cts, owned, i, g)
    if watch is not None:
        keep = True
    plain = False
    scatter = None
    tg: Any = None
    real, partials_, rule_, pulls, f64, arr = _WALKER_CONSTANTS  # (locals: read per edge)
    for i in range(n - 1, -1, -1):
        g = cts[i]
        if g is None:
            continue
        entry = nodes[i]
        prim = entry.prim
        if watch is None:
            if prim is None:
                continue  # an input (its cotangent is a result) or a constant
            cts[i] = None
            scatter = prim.scatter
            # the commonest cotangents, pulled inline: float64 arrays and scalars
            tg = type(g)
            plain = (tg is arr and g.dtype.char == "d") or tg in f64
        else:
            g = cts[i] = watch.enter(i, entry, g)
            if prim is None:
                continue
        if not keep:
            nodes[i] = _RELEASED
        ans = entry.out
        primals = entry.kept
        params = entry.params
        strategy = prim.strategy
        for argpos, pid, shape, kind in entry.edges:
            if scatter is not None and kind is real and (
                    cts[pid] is None or owned[pid]) and argpos == prim.vjp_add_arg:
                # the cotangent scattered straight into the pass's buffer
                acc = (scatter(cts[pid], g, ans, *primals, g_owned=owned[i], **params)
                       if prim.vjp_add_owned else
                       scatter(cts[pid], g, ans, *primals, **params))
                if acc is not NotImplemented:
                    cts[pid] = acc
                    owned[pid] = True
                    continue
                c = pulls[strategy](prim, argpos, g, ans, primals, params, shape, kind)
            elif not plain or kind is not real:  # (plain is False under a watch)
                c = (pulls[strategy](prim, argpos, g, ans, primals, params, shape, kind)
                     if watch is None else watch.edge(i, entry, argpos, pid, g, shape, kind))
            elif strategy is partials_:
                d = prim.fast_partials[argpos](ans, *primals)  # type: ignore[index]
                if type(d) is arr and d.dtype.char == "d":
                    if (_ELIDE and getrefcount(d) <= 2 and d.base is None
                            and tg is arr and d.shape == g.shape and d.flags.writeable):
                        c = np.multiply(g, d, out=d)  # d is a temporary: see pull_partials
                    else:
                        c = g * d
                    if c.shape != shape:
                        c = unbroadcast(c, shape)
                else:
                    c = g * d
                    if type(c) not in f64 or shape:  # (a float64 of a scalar: as it is)
                        c = _fit(c, shape, kind)
                del d
            else:
                c = prim.vjps[argpos](g, ans, *primals, **params)  # type: ignore[index]
                if strategy is not rule_:
                    c = _finish(prim, c, shape, kind)
                elif type(c) is arr and c.dtype.char == "d":
                    if prim.elementwise and c.shape != shape:
                        c = unbroadcast(c, shape)
                elif type(c) not in f64 or shape:  # (a float64 of a scalar: as it is)
                    c = _finish(prim, c, shape, kind)
            if cts[pid] is None:
                cts[pid] = c
            else:
                cotangent.accumulate(cts, owned, pid, c)
    if not keep:
        # An escaped tracer keeps its tape alive; it must not keep the values too.
        nodes.clear()
    return cts



def forward_pass(nodes: list[Entry], tangents: dict[int, Any],
                 watch: Watch | None = None) -> list[Any]:
    """The forward walker: each entry's tangent from its arguments' (``tangents``:
    entry index -> tangent, a ``Batched`` one for a batch), by the JVP rules
    (``tangent_out``) or by ``watch.step``; entries no tangent reaches get None."""
    ts: list[Any] = [None] * len(nodes)
    for i, t in tangents.items():
        ts[i] = t
    for i, entry in enumerate(nodes):
        if entry.prim is None:
            continue
        args: list[Any] = [None] * len(entry.kept)
        reached = False
        for argpos, pid, _, _ in entry.edges:
            t = ts[pid]
            if t is not None:
                args[argpos] = t
                reached = True
        if not reached:
            continue
        ts[i] = (tangent_out(entry.prim, args, entry.out, list(entry.kept), entry.params)
                 if watch is None else watch.step(i, entry, args))
    return ts


# ------------------------------------------------------------------ pull strategies
# One per Primitive.strategy; the walker runs the float64 cases of RULE and PARTIALS
# inline and calls these for everything else (batches, complex, other precisions).

def pull_general(prim: Primitive, argpos: int, g: Any, ans: Any, primals: Any,
                 params: dict[str, Any], shape: tuple[int, ...], kind: Any) -> Any:
    """GENERAL: the VJP rule, its result fitted to the argument (``_finish``)."""
    return _finish(prim, prim.vjps[argpos](g, ans, *primals, **params),  # type: ignore[index]
                   shape, kind)


def pull_rule(prim: Primitive, argpos: int, g: Any, ans: Any, primals: Any,
              params: dict[str, Any], shape: tuple[int, ...], kind: Any) -> Any:
    """RULE: the VJP rule; a batch of float64 cotangents of a real argument (jacrev's
    pass) has the float64 results' checks inline."""
    c = prim.vjps[argpos](g, ans, *primals, **params)  # type: ignore[index]
    if (kind is cotangent.REAL and type(c) is Batched and type(raw := c.primal) is ndarray
            and raw.dtype.char == "d"):
        if prim.elementwise and raw.shape[1:] != shape:
            return unbroadcast(c, shape)
        return c
    return _finish(prim, c, shape, kind)


def pull_partials(prim: Primitive, argpos: int, g: Any, ans: Any, primals: Any,
                  params: dict[str, Any], shape: tuple[int, ...], kind: Any) -> Any:
    """PARTIALS: the cotangent times the elementwise partial derivative, summed back to
    the argument's ``shape`` where the primitive broadcast it."""
    d = prim.fast_partials[argpos](ans, *primals)  # type: ignore[index]
    if (_ELIDE and type(g) is ndarray and type(d) is ndarray and getrefcount(d) <= 2
            and d.base is None and d.shape == g.shape and d.dtype == g.dtype
            and d.flags.writeable):
        # d is a temporary nobody else can see (NumPy's own temporary elision test):
        # multiply into it instead of allocating again; g * d in the order of the
        # general branch (a complex product with FMA is not commutative to the bit, and
        # a dr.replay recording takes the general branch)
        c = np.multiply(g, d, out=d)
    elif type(g) is Batched and not isinstance(d, Tracer):
        c = scale(g, d)  # a batch of cotangents times a plain partial
        raw = c.primal
        if kind is cotangent.REAL and type(raw) is ndarray and raw.dtype.char == "d":
            del d
            return unbroadcast(c, shape) if raw.shape[1:] != shape else c
    else:
        c = g * d
    del d
    return _fit(c, shape, kind)


_PULLS = (pull_general, pull_rule, pull_partials)  # by Primitive.strategy
_WALKER_CONSTANTS = (cotangent.REAL, PARTIALS, RULE, _PULLS, FLOAT64_SCALARS, ndarray)


def pull(prim: Primitive, argpos: int, g: Any, ans: Any, primals: list[Any],
         params: dict[str, Any], shape: tuple[int, ...], kind: Any) -> Any:
    """The cotangent of argument ``argpos`` of one recorded operation, from the output's
    ``g``, by the primitive's strategy: summed back to the argument's ``shape`` where the
    primitive broadcast it, and of the argument's ``kind`` (see ``cotangent.kind``)."""
    return _PULLS[prim.strategy](prim, argpos, g, ans, primals, params, shape, kind)


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



def _same_bits(a: ndarray, c: ndarray) -> bool:
    """Whether the C-contiguous ``a`` still holds exactly the bits of its copy ``c`` (nan
    and -0.0 included, which a == comparison would not tell apart)."""
    return (a.flags.c_contiguous and a.shape == c.shape and a.dtype == c.dtype
            and bool(np.array_equal(a.reshape(-1).view(np.uint64),
                                    c.reshape(-1).view(np.uint64))))


class _AnnouncedTape(Tape):
    """A tape made while a drawing records (see tracer.watch_passes): its recording
    announces the pass; finished, it is a FinishedTape like any other."""

    __slots__ = ()

    def process(self, prim: Primitive, args: Any, params: dict[str, Any]) -> Any:
        enter_pass(self, "forward")
        try:
            return Tape.process(self, prim, args, params)
        finally:
            exit_pass()


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

    def _no_derivative_here(self) -> bool:
        # on a tape, no input reaches its entry (TracedBase._no_derivative_here)
        return self._trace.reaches_no_input(self._index)


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
    if is_lazy(v):
        return True  # looking would compute the whole graph: checked when computed instead
    try:
        return bool(np.all(np.isfinite(v)))
    except TypeError:  # not numeric (a stand-in, an object array): nothing to say
        return True


def is_lazy(v: Any) -> bool:
    """Whether ``v`` is a lazy collection (a Dask array: Dask's collection protocol),
    whose values exist only when it is computed."""
    return hasattr(type(v), "__dask_graph__")


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

    __slots__ = ("lines", "culprit", "mode", "culprit_at", "ruled")

    def __init__(self, level: int, what: str = "a reverse-mode transform",
                 keep_all: bool = True) -> None:
        super().__init__(level, what, True)
        self.lines: dict[int, tuple[str, int]] = {}
        #: (primitive name, entry, cause: see _cause) where a derivative first became
        #: non-finite from finite ones, or None
        self.culprit: tuple[str, int, str] | None = None
        self.mode = "reverse"  # of the last careful pass: "reverse" or "forward"
        #: where the culprit's derivative is not finite: (argument position or None for
        #: the output, the plain mask of non-finite elements, whether any is nan)
        self.culprit_at: tuple[int | None, Any, bool] | None = None
        #: the entries recorded while derivative rules ran (a nested transform's pass):
        #: their line is the transform's call, not the operation's own
        self.ruled: set[int] = set()

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
            if in_rules():
                self.ruled.add(n)
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
        watch = _ReachBack(len(nodes))
        backward_pass(nodes, {i: _probe(g, shape_of(nodes[i].out)) for i, g in seeds.items()},
                      watch=watch)
        return watch.masks, watch.edges

    def reach_forward(self, seeds: dict[int, Any]) -> tuple[list[Any], dict[Any, Any]]:
        """Where tangents can be nonzero at all (``reach_back`` forward, from the seeds'
        nonzero elements): a mask per entry and per edge ``(entry, argument position)``
        (of the entry's shape)."""
        nodes = self.nodes
        watch = _ReachForward()
        masks = forward_pass(nodes, {i: np.isnan(_probe(t, shape_of(nodes[i].out)))
                                     for i, t in seeds.items()}, watch)
        return masks, watch.edges

    # -- the careful passes --------------------------------------------------------
    def backward(self, seeds: dict[int, Any], keep: bool = False) -> list[Any]:
        self.mode = "reverse"
        reach, edges = self.reach_back(seeds)
        return backward_pass(self.nodes, seeds, True, _CarefulBack(self, reach, edges))

    def push(self, tangents: dict[int, Any]) -> list[Any]:
        self.mode = "forward"
        reach, edges = self.reach_forward(tangents)
        return forward_pass(self.nodes, tangents, _CarefulForward(self, edges))


class _ReachBack(Watch):
    """reach_back's probes: an elementwise partial passes the probe as it is, every
    other rule runs on it; each entry's and each edge's reach recorded."""

    def __init__(self, n: int) -> None:
        self.masks: list[Any] = [None] * n
        self.edges: dict[Any, Any] = {}

    def enter(self, i: int, entry: Entry, g: Any) -> Any:
        self.masks[i] = np.isnan(g)
        return g

    def edge(self, i: int, entry: Entry, argpos: int, pid: int, g: Any,
             shape: tuple[int, ...], kind: Any) -> Any:
        prim = entry.prim
        try:
            c = g if prim.partials is not None else prim.vjps[argpos](  # type: ignore[union-attr,index]
                g, entry.out, *entry.kept, **entry.params)
            p = _probe(c, shape)
        except Exception:  # noqa: BLE001  (a rule that cannot take the probe)
            p = np.full(shape, np.nan)
        self.edges[i, argpos] = np.isnan(p)
        return p


class _ReachForward(Watch):
    """reach_forward's probes, per edge (tangents are masks here)."""

    def __init__(self) -> None:
        self.edges: dict[Any, Any] = {}

    def step(self, i: int, entry: Entry, tangents: list[Any]) -> Any:
        prim = entry.prim
        ans, primals = entry.out, entry.kept
        shape = shape_of(ans)
        m = None
        for argpos, _, _, _ in entry.edges:
            r = tangents[argpos]
            if r is None or (prim.jvps is not None and prim.jvps[argpos] is None):  # type: ignore[union-attr]
                continue
            a = np.where(r, np.nan, 0.0)
            try:
                if prim.partials is not None:  # type: ignore[union-attr]
                    t = a + np.zeros(shape)
                else:
                    args: list[Any] = [None] * len(primals)
                    args[argpos] = a
                    t = tangent_out(prim, args, ans, list(primals), entry.params)  # type: ignore[arg-type]
                e = None if t is None else np.isnan(_probe(t, shape))
            except Exception:  # noqa: BLE001
                e = np.ones(shape, bool)
            if e is None:
                continue
            self.edges[i, argpos] = e
            m = e if m is None else m | e
        return m


class _CarefulBack(Watch):
    """The careful backward pass: the general rules, strong zeros where an entry or an
    edge is not reached, and the culprit (where a cotangent first became non-finite
    from finite ones)."""

    def __init__(self, tape: CarefulTape, reach: list[Any], edges: dict[Any, Any]) -> None:
        self.tape = tape
        self.reach = reach
        self.edges = edges
        self.source: list[Any] = [None] * len(reach)  # where a non-finite one came from
        self.at: dict[int, tuple[int | None, Any, bool]] = {}  # its elements, by entry
        self.finite = True

    def enter(self, i: int, entry: Entry, g: Any) -> Any:
        m = self.reach[i]
        if m is None:
            m = np.zeros(shape_of(entry.out), bool)
        if not _everywhere(m):
            g = np.where(m, g, 0.0)  # strong zeros
        tape = self.tape
        if tape.culprit is None and self.source[i] is not None and not all_finite(g):
            tape.culprit = self.source[i]
            tape.culprit_at = self.at.get(i)
        self.finite = all_finite(g)
        return g

    def edge(self, i: int, entry: Entry, argpos: int, pid: int, g: Any,
             shape: tuple[int, ...], kind: Any) -> Any:
        prim = entry.prim
        c = pull_general(prim, argpos, g, entry.out, entry.kept, entry.params,  # type: ignore[arg-type]
                         shape, kind)
        e = self.edges.get((i, argpos))
        if e is not None and not _everywhere(e):
            c = np.where(e, c, 0.0)  # strong zeros of this edge
        if self.finite and self.source[pid] is None and not all_finite(c):
            self.source[pid] = (prim.name, i, _cause(prim, entry.out, g, c))  # type: ignore[union-attr]
            self.at[pid] = _elements(argpos, c)
        return c


class _CarefulForward(Watch):
    """The careful forward pass: one argument's tangent at a time, so that each edge's
    strong zeros apply to its own contribution, and the culprit."""

    def __init__(self, tape: CarefulTape, edges: dict[Any, Any]) -> None:
        self.tape = tape
        self.edges = edges

    def step(self, i: int, entry: Entry, tangents: list[Any]) -> Any:
        prim = entry.prim
        ans, primals, params = entry.out, list(entry.kept), entry.params
        tape = self.tape
        if prim.custom is not None:  # type: ignore[union-attr]
            # a custom_vjp: its transposed bwd takes every argument's tangent in one
            # pass (opaque to the edges' strong zeros, like its reverse rule)
            finite = all(a is None or all_finite(a) for a in tangents)
            t = tangent_out(prim, tangents, ans, primals, params)  # type: ignore[arg-type]
            if tape.culprit is None and finite and not all_finite(t):
                tape.culprit = (prim.name, i, _cause(prim, ans, None, t))  # type: ignore[union-attr,arg-type]
                tape.culprit_at = _elements(None, t)
            return t
        finite = True
        t = None
        zero = False
        for argpos, _, _, _ in entry.edges:
            a = tangents[argpos]
            if a is None:
                continue
            finite = finite and all_finite(a)
            args: list[Any] = [None] * len(primals)
            args[argpos] = a
            c = tangent_out(prim, args, ans, primals, params)  # type: ignore[arg-type]
            if c is None:
                continue
            e = self.edges.get((i, argpos))
            if e is None:
                continue
            if not _everywhere(e):
                c = np.where(e, c, 0.0)
            zero = zero or (not all_finite(c) and _cause(prim, ans, a, c) == "zero")  # type: ignore[arg-type]
            t = c if t is None else t + c
        if tape.culprit is None and finite and t is not None and not all_finite(t):
            tape.culprit = (prim.name, i,  # type: ignore[union-attr]
                            "zero" if zero else _cause(prim, ans, None, t))  # type: ignore[arg-type]
            tape.culprit_at = _elements(None, t)
        return t


def _elements(argpos: int | None, c: Any) -> tuple[int | None, Any, bool]:
    """Where the derivative ``c`` (of argument ``argpos``, or of the output: None) is not
    finite, for the NaN debugging mode's report: the mask of its plain elements (a batch
    keeps its axis first) and whether any of them is nan."""
    try:
        v = np.asarray(_plain_value(c))
        return argpos, ~np.isfinite(v), bool(np.isnan(v).any())
    except (TypeError, ValueError):
        return argpos, None, True


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


# ------------------------------------------------------------------ the NaN debugging mode
# While dualrev.debug_nans is on (and only then) the tape checks each recorded value
# (debug.check_output) and marks its passes as derivative rules, whose values the
# transform's result check covers (see dualrev/debug.py). Swapping the methods keeps
# the off state free: no per-operation path asks whether the mode is on.

_PLAIN_METHODS = {cls: (cls.process, cls.backward, cls.push) for cls in (Tape, CarefulTape)}


def _checked_process(self: Tape, prim: Primitive, args: Any, params: dict[str, Any]) -> Any:
    out = _PLAIN_METHODS[Tape][0](self, prim, args, params)
    if not in_rules():
        check_output(prim, args, out)
    return out


def _in_rules(method: Any) -> Any:
    def run(self: Tape, *args: Any, **kwargs: Any) -> list[Any]:
        with rules():
            return method(self, *args, **kwargs)
    run.__doc__ = method.__doc__
    run.__name__ = method.__name__
    return run


_CHECKED_METHODS = {cls: (_checked_process if cls is Tape else cls.process,
                          _in_rules(cls.backward), _in_rules(cls.push))
                    for cls in (Tape, CarefulTape)}


@config.on_debug_nans
def _choose_debug(on: bool) -> None:
    for cls, methods in (_CHECKED_METHODS if on else _PLAIN_METHODS).items():
        cls.process, cls.backward, cls.push = methods  # type: ignore[method-assign]
