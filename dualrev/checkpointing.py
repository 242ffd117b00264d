"""Checkpointing: recompute in the backward pass instead of storing.

``checkpoint(f)`` makes one call of ``f`` a single entry of the reverse-mode tape that
keeps only its inputs and output; its backward rule runs ``f`` again on a fresh tape and
pulls the cotangent through it. ``checkpoint_loop(step, x0, n, *args)`` does the same
for ``n`` steps of a time-stepping loop, and reverses them by a schedule: segments of
fixed length (``n/m`` stored states and an ``m``-step tape), or the binomial schedule of
Griewank and Walther ("revolve": ``s`` stored states, the fewest possible re-runs of
``step``; with ``t`` re-runs per step it reaches ``C(s + t, s)`` steps).

Both are a primitive whose only trace is the tape (``Primitive.custom``: the tape runs
``on_tape`` rather than the body): under forward mode, ``vmap``, a replay's staging or a
sparsity detection, and where no value is traced, the function simply runs, since
there is no tape whose memory it could save. The traced values the function closes over
become arguments of the primitive (``closure.lift``), so they get their derivative.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from math import comb, isqrt
from typing import Any, ParamSpec, TypeVar

import numpy as np

from .closure import lift
from .custom import _Box, _pack, _unpack
from .errors import CheckpointError
from .forward import Dual, ForwardTrace
from .primitive import Primitive, Tracer, bind, dtype_of, shape_of
from .reverse import CarefulTape, Tape, Traced
from .tracer import new_level
from .tree import TreeDef, tree_flatten, tree_unflatten

# ------------------------------------------------------------------ the primitive


class _Pass:
    """One entry's cotangents for the pass's ``g``: the backward rule computes every
    argument's at once (one re-run), and serves each argument once per pass (a second
    request for an argument means a new pass)."""

    __slots__ = ("g", "cts", "served")

    def __init__(self) -> None:
        self.g: Any = None
        self.cts: list[Any] = []
        self.served: set[int] = set()

    def __repr__(self) -> str:
        return "pass"


class _Body:
    """What one checkpointed call runs: ``forward(leaves)`` the output (packed into one
    array when it is a pytree, its layout in ``box``) with whatever it keeps for the
    backward pass; ``backward(leaves, kept, g, wrt, careful)`` the cotangents of the
    leaves at the positions ``wrt``; ``plain(leaves)`` the output alone (on values of
    any trace: the JVP rule runs it on forward-mode values)."""

    name = "checkpoint"

    def forward(self, leaves: list[Any]) -> tuple[Any, Any]:
        raise NotImplementedError

    def backward(self, leaves: list[Any], kept: Any, g: Any, wrt: tuple[int, ...],
                 careful: bool) -> list[Any]:
        raise NotImplementedError

    def plain(self, leaves: list[Any]) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:  # what a drawing (dr.graph) shows for the entry
        return self.name


class _Handler:
    """The object the tape calls for the checkpoint primitive (``Primitive.custom``)."""

    def on_tape(self, tape: Tape, primals: list[Any], args: Sequence[Any],
                params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        body: _Body = params["body"]
        level = tape.level
        wrt = tuple(i for i, a in enumerate(args)
                    if type(a) is Traced and a._level == level)
        ans, kept = body.forward(list(primals))
        if isinstance(ans, Tracer) and ans._level >= level:
            raise CheckpointError(
                f"dualrev: {body.name} returned a value traced by the transform that "
                "differentiates it, for arguments not traced by it: the function reads a "
                "traced value that is neither an argument nor in its closure (a global, a "
                "class attribute). Pass that value as an argument")
        # the careful replay of a non-finite result (strong zeros, the culprit) records
        # the re-runs on careful tapes too
        return ans, {**params, "kept": kept, "wrt": wrt, "state": _Pass(),
                     "careful": isinstance(tape, CarefulTape)}

    def forward(self, primals: list[Any], tangents: list[Any],
                params: dict[str, Any]) -> tuple[Any, Any]:
        # not reached by checkpoint's own calls (they bind only where a tape is the
        # innermost trace); kept for a forward trace that meets the primitive anyway
        return params["body"].plain(list(primals)), _jvp(tangents, None, *primals, **params)


def _impl(*leaves: Any, body: _Body, **params: Any) -> Any:
    return body.plain(list(leaves))


def _vjp(i: int, g: Any, ans: Any, *primals: Any, body: _Body, kept: Any,
         wrt: tuple[int, ...], state: _Pass, careful: bool) -> Any:
    if state.g is not g or i in state.served:
        cts = body.backward(list(primals), kept, g, wrt, careful)
        state.cts = [None] * len(primals)
        for j, c in zip(wrt, cts, strict=True):
            state.cts[j] = c
        state.g, state.served = g, set()
    state.served.add(i)
    c = state.cts[i]
    return np.zeros(shape_of(primals[i]), dtype_of(primals[i])) if c is None else c


def _jvp(tangents: list[Any], ans: Any, *primals: Any, body: _Body, **params: Any) -> Any:
    """The output's tangent (a tape pushed forward: ``jacobian``, the careful pass): the
    body run once more under a forward trace, which stores nothing either."""
    trace = ForwardTrace(new_level(), f"the tangent of {body.name}")
    leaves = [p if t is None else Dual(p, t, trace) for p, t in zip(primals, tangents,
                                                                     strict=True)]
    try:
        out = body.plain(leaves)
    finally:
        trace.finish()
    if type(out) is Dual and out._trace is trace:
        return out.tangent
    return None


class _CheckpointPrimitive(Primitive):
    """The checkpoint primitive: its ``custom`` handler is what the tape runs."""

    __slots__ = ("custom",)

    def __init__(self) -> None:
        super().__init__("checkpoint", _impl)
        self.custom = _Handler()


checkpoint_p = _CheckpointPrimitive()
checkpoint_p.defvjp_indexed(_vjp)
checkpoint_p.defjvp_joint(_jvp)


def _innermost(leaves: Sequence[Any]) -> Any:
    top = None
    for a in leaves:
        if isinstance(a, Tracer) and (top is None or a._level > top._level):
            top = a
    return top


def _is_diff(a: Any) -> bool:
    """A leaf that takes part in differentiation: traced, or a float/complex value."""
    if isinstance(a, Tracer):
        return True
    if isinstance(a, (float, complex)) and not isinstance(a, bool):
        return True
    return isinstance(a, (np.ndarray, np.generic)) and a.dtype.kind in "fc"


def _fresh(v: Any) -> Any:
    """A plain array handed to the user's function is its own copy: a function that
    writes into its argument must not rewrite a kept value."""
    # np.array: a plain copy, also of a closed-over array's PlainInput view (whose own
    # copy() is a buffer for traced writes)
    return np.array(v) if isinstance(v, np.ndarray) else v


def _zeros(v: Any) -> Any:
    dt = dtype_of(v)
    return np.zeros(shape_of(v), dt if dt.kind in "fc" else np.float64)


def _record(fun: Callable[..., Any], leaves: list[Any], wrt: Sequence[int],
            what: str, careful: bool) -> tuple[Tape, list[int], list[Any]]:
    """``fun(leaves)`` on a fresh tape (a careful one under a careful pass), the leaves at
    ``wrt`` its inputs: the tape, the inputs' entries, and the output's leaves."""
    tape = CarefulTape(new_level(), what) if careful else Tape(new_level(), what)
    ins = list(leaves)
    index = []
    for j in wrt:
        t = tape.input(leaves[j])
        index.append(t._index)  # read now: the function may write into t, rebinding it
        ins[j] = t
    try:
        out = fun(ins)
    finally:
        tape.finish()
    return tape, index, tree_flatten(out)[0]


def _pull(tape: Tape, index: list[int], outs: list[Any], cts: list[Any]) -> list[Any]:
    """The cotangents (None where none arrived) of the inputs at ``index`` from those of
    the outputs ``outs``."""
    seeds: dict[int, Any] = {}
    for o, c in zip(outs, cts, strict=True):
        if c is not None and type(o) is Traced and o._trace is tape:
            k = o._index
            seeds[k] = c if k not in seeds else seeds[k] + c
    if not seeds:
        return [None] * len(index)
    back = tape.backward(seeds)
    return [back[k] for k in index]


def _add(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else a + b


# ------------------------------------------------------------------ checkpoint(f)


class _FunctionBody(_Body):
    """One call of a checkpointed function: ``fun`` is the call with every traced value
    it reaches (in its arguments, however nested, and in its closure) lifted out as its
    arguments (``closure.lift`` of the call as a partial)."""

    __slots__ = ("fun", "box", "name")

    def __init__(self, fun: Callable[..., Any], name: str) -> None:
        self.fun, self.box, self.name = fun, _Box(), name

    def _call(self, leaves: list[Any], box: _Box) -> Any:
        out = self.fun(*leaves)
        if not isinstance(out, Tracer) and isinstance(out, (tuple, list, dict)):
            kinds = [dtype_of(v).kind for v in tree_flatten(out)[0]]
            if any(k not in "fc" for k in kinds):
                raise CheckpointError(
                    f"dualrev: {self.name} returned a pytree with leaves of kinds {kinds}: "
                    "a checkpointed function's outputs are float or complex arrays (they "
                    "are packed into one array on the tape); return integer or boolean "
                    "results from a function that is not checkpointed")
        return _pack(self.name, out, box)

    def plain(self, leaves: list[Any]) -> Any:
        return self._call(leaves, _Box())

    def forward(self, leaves: list[Any]) -> tuple[Any, Any]:
        return self._call([_fresh(v) for v in leaves], self.box), None

    def backward(self, leaves: list[Any], kept: Any, g: Any, wrt: tuple[int, ...],
                 careful: bool) -> list[Any]:
        fresh = [_fresh(v) for v in leaves]
        tape, index, outs = _record(lambda ls: self._call(ls, _Box()), fresh, wrt,
                                    f"{self.name}, run again for the backward pass", careful)
        return _pull(tape, index, outs, [g])


P = ParamSpec("P")  # the checkpointed function is called as fun is
R = TypeVar("R")  # and returns what fun returns


def checkpoint(fun: Callable[P, R]) -> Callable[P, R]:
    """``fun`` with its intermediate values recomputed in the backward pass instead of
    stored (JAX's ``jax.checkpoint``/``remat``, PyTorch's ``torch.utils.checkpoint``).

    Under reverse mode (``grad``, ``vjp``, ``jacrev``, ``hessian``...) a call of the
    returned function is one entry of the tape that keeps only the call's inputs and
    output; the backward pass runs ``fun`` again on a fresh tape and pulls the cotangent
    through it. Memory falls from everything ``fun`` computes to its inputs and output,
    at the price of a second run of ``fun``. Derivatives are those of ``fun`` itself, at
    every order (the re-run is differentiable in turn).

    Every traced value the call reaches gets its gradient: in the arguments however
    nested (pytrees, keyword arguments, an object such as a method's ``self`` holding a
    parameter) and in ``fun``'s closure (an outer function's parameters), found as
    ``dualrev.closure`` finds them in SciPy callbacks; a traced value read from a global
    raises ``ClosureError``. The output may be a pytree of float arrays; integers,
    strings and other objects among the arguments are passed through. Under forward
    mode, ``vmap`` and ``dr.replay``'s recording there is no tape to spare, and ``fun``
    runs as it is (so does a plain call).

    ``fun`` runs twice per differentiated call: randomness (draw it outside and pass it
    in), counters and other side effects happen twice.

    Args:
        fun: the function to checkpoint.
    Returns:
        A function with ``fun``'s signature and values.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> layer = dr.checkpoint(lambda x, w: np.tanh(w * np.sin(x)))
        >>> f = lambda w: np.sum(layer(layer(np.linspace(0, 1, 5), w), w))
        >>> g_plain = dr.grad(lambda w: np.sum(np.tanh(w * np.sin(
        ...     np.tanh(w * np.sin(np.linspace(0, 1, 5)))))))(0.7)
        >>> bool(abs(dr.grad(f)(0.7) - g_plain) < 1e-14)
        True
    """
    name = f"checkpoint({getattr(fun, '__name__', 'f')})"

    @functools.wraps(fun)
    def checkpointed(*args: Any, **kwargs: Any) -> Any:
        # every traced value the call reaches, in its arguments (pytrees, objects,
        # keyword arguments) and in fun's closure, becomes an argument of the primitive
        g, params = lift(functools.partial(fun, *args, **kwargs))
        if type(_innermost(params)) is not Traced:
            return fun(*args, **kwargs)  # no tape is the innermost trace: nothing to spare
        leaves = list(params)
        body = _FunctionBody(g, name)
        out = bind(checkpoint_p, leaves, {"body": body})
        return out if body.box.layout is None else _unpack(out, body.box.layout)

    return checkpointed


# ------------------------------------------------------------------ loops


def binomial(s: int, t: int) -> int:
    """``β(s, t) = C(s + t, s)``: the most steps ``s`` stored states reverse when no step
    runs more than ``t`` times beyond its first run (0 for ``t < 0``)."""
    return comb(s + t, s) if t >= 0 else 0


def repetitions(n: int, s: int) -> int:
    """The smallest ``t`` with ``β(s, t) >= n``."""
    t = 0
    while binomial(s, t) < n:
        t += 1
    return t


def revolve_advances(n: int, s: int) -> int:
    """The fewest runs of ``step`` (not counting the one recorded run of each step in the
    backward pass) that reverse ``n`` steps holding at most ``s`` states (the first
    included): ``t n - β(s + 1, t - 1)`` with ``t = repetitions(n, s)`` (Griewank and
    Walther, 2000). Includes the ``n - 1`` of the first sweep."""
    t = repetitions(n, s)
    return t * n - binomial(s + 1, t - 1)


def _split_point(n: int, s: int) -> int:
    """Where an optimal schedule for ``n`` steps and ``s`` states stores its next state:
    the head (reversed later with ``s`` states) at most ``β(s, t - 1)`` steps, the tail
    (reversed first with ``s - 1``) at least ``β(s - 1, t - 1)``."""
    if s == 1:
        return n - 1
    t = repetitions(n, s)
    return max(1, min(binomial(s, t - 1), n - binomial(s - 1, t - 1)))


def _first_sweep(n: int, s: int) -> list[int]:
    """The states an optimal schedule stores on its way to step ``n - 1`` (which it
    holds, unstored): the forward pass stores them as it goes."""
    out, lo = [], 0
    while n - lo > 1:
        lo += _split_point(n - lo, s)
        s = max(s - 1, 1)
        out.append(lo)
    return out


SCHEDULES = ("revolve", "segments", "store_all")


def _call_step(step: Callable[..., Any], args: tuple[Any, ...], x: Any) -> Any:
    return step(x, *args)


class _LoopBody(_Body):
    """``n`` runs of ``step`` from the state leaves ``leaves[:ns]``; ``step(x, *rest)``
    is the user's step with its arguments, the traced values it reaches (in ``args`` and
    in its closure) lifted out as ``rest = leaves[ns:]``; reversed by ``schedule``."""

    __slots__ = ("step", "ns", "sdef", "n", "schedule", "size", "box", "name", "stored")

    def __init__(self, step: Callable[..., Any], ns: int, sdef: TreeDef,
                 n: int, schedule: str, size: int, name: str) -> None:
        self.step, self.ns, self.sdef = step, ns, sdef
        self.n, self.schedule, self.size = n, schedule, size
        self.box, self.name = _Box(), name
        self.stored = 0  # the most states held at once in the last pass (for tests)

    def __repr__(self) -> str:
        what = "snapshots" if self.schedule == "revolve" else "segment_length"
        return f"{self.name}, n={self.n}, {self.schedule} {what}={self.size}"

    def _run(self, state: list[Any], rest: list[Any]) -> list[Any]:
        """One step: the next state's leaves, checked against the state's structure."""
        out = self.step(tree_unflatten(self.sdef, list(state)), *rest)
        leaves, td = tree_flatten(out)
        if td != self.sdef:
            raise CheckpointError(
                f"dualrev: {self.name}: step returned {td!r}, but the state is "
                f"{self.sdef!r}: step(x, *args) must return the next state, of the "
                "structure of x0")
        for a, b in zip(leaves, state, strict=True):
            if shape_of(a) != shape_of(b):
                raise CheckpointError(
                    f"dualrev: {self.name}: step changed a state leaf's shape from "
                    f"{shape_of(b)} to {shape_of(a)}: the state keeps its shapes")
        return leaves

    def _advance(self, state: list[Any], rest: list[Any], k: int) -> list[Any]:
        for _ in range(k):
            state = self._run(state, rest)
        return state

    def _pack(self, state: list[Any], box: _Box) -> Any:
        return _pack(self.name, tree_unflatten(self.sdef, list(state)), box)

    def plain(self, leaves: list[Any]) -> Any:
        ns = self.ns
        return self._pack(self._advance(leaves[:ns], leaves[ns:], self.n), _Box())

    def forward(self, leaves: list[Any]) -> tuple[Any, Any]:
        """The ``n`` steps, storing (copies of) the states the schedule reads first."""
        ns, n = self.ns, self.n
        rest = [_fresh(v) for v in leaves[ns:]]
        state = [_fresh(v) for v in leaves[:ns]]
        if self.schedule == "segments":
            keep = set(range(self.size, n, self.size))
        else:
            keep = set(_first_sweep(n, self.size))
        stored: dict[int, list[Any]] = {}
        for k in range(1, n + 1):
            state = self._run(state, rest)
            if k in keep:
                stored[k] = [_fresh(v) for v in state]
        return self._pack(state, self.box), stored

    def backward(self, leaves: list[Any], kept: Any, g: Any, wrt: tuple[int, ...],
                 careful: bool) -> list[Any]:
        ns = self.ns
        box = self.box
        ct = tree_flatten(g if box.layout is None else _unpack(g, box.layout))[0]
        x0 = [_fresh(v) for v in leaves[:ns]]
        rest = [_fresh(v) for v in leaves[ns:]]
        args_wrt = tuple(j - ns for j in wrt if j >= ns)
        stored: dict[int, list[Any]] = dict(kept)
        acc: list[Any] = [None] * len(args_wrt)
        every = tuple(range(ns + len(args_wrt)))  # the recorded stretch's inputs

        def reverse(lo: int, hi: int, state: list[Any], ct: list[Any]) -> list[Any]:
            """Steps ``lo..hi-1`` recorded from ``state`` (the state at ``lo``) and
            reversed: the cotangent of the state at ``lo`` from that at ``hi``."""

            def run(ls: list[Any]) -> Any:
                s, r = ls[:ns], list(rest)
                for j, v in zip(args_wrt, ls[ns:], strict=True):
                    r[j] = v
                return self._advance(s, r, hi - lo)

            tape, index, outs = _record(
                run, [*state, *(rest[j] for j in args_wrt)], every,
                f"{self.name}, steps {lo}..{hi - 1} run again for the backward pass",
                careful)
            back = _pull(tape, index, outs, ct)
            for a, c in enumerate(back[ns:]):
                acc[a] = _add(acc[a], c)
            return [_zeros(v) if c is None else c for v, c in zip(state, back[:ns],
                                                                  strict=True)]

        held = [0, 0]  # states held now, the most at once

        def hold(d: int) -> None:
            held[0] += d
            held[1] = max(held[1], held[0])

        n = self.n
        if self.schedule == "segments":
            m = self.size
            hold(len(stored) + 1)
            for lo in range((n - 1) // m * m, -1, -m):
                state = x0 if lo == 0 else stored.pop(lo)
                ct = reverse(lo, min(lo + m, n), state, ct)
                hold(-1)
        else:
            ct = self._revolve(n, self.size, x0, ct, rest, stored, reverse, hold)
        self.stored = held[1]
        return [*ct, *acc] if len(wrt) == ns + len(args_wrt) else self._select(
            ct, acc, wrt, args_wrt)

    def _select(self, ct: list[Any], acc: list[Any], wrt: tuple[int, ...],
                args_wrt: tuple[int, ...]) -> list[Any]:
        ns = self.ns
        by_arg = dict(zip(args_wrt, acc, strict=True))
        return [ct[j] if j < ns else by_arg[j - ns] for j in wrt]

    def _revolve(self, n: int, s: int, x0: list[Any], ct: list[Any], rest: list[Any],
                 stored: dict[int, list[Any]], reverse: Callable[..., list[Any]],
                 hold: Callable[[int], None]) -> list[Any]:
        """Reverse steps ``0..n-1`` from ``x0`` holding at most ``s`` states. A range
        ``[lo, hi)`` whose first state is held, with ``s`` states: store the state at the
        split point, reverse the tail with ``s - 1``, then the head, what remains, with
        ``s``. The ranges are a stack of frames ``[lo, hi, s, state]`` rather than
        recursive calls (its depth is ``s``, beyond Python's recursion limit for a few
        thousand snapshots). The forward pass stored the first sweep's states."""
        frames = [[0, n, s, x0]]
        hold(1)
        while frames:
            frame = frames[-1]
            lo, hi, k, state = frame
            if hi - lo == 1:
                ct = reverse(lo, hi, state, ct)
                frames.pop()
                hold(-1)
                continue
            mid = lo + _split_point(hi - lo, k)
            later = stored.pop(mid, None)
            if later is None:
                later = self._advance([_fresh(v) for v in state], rest, mid - lo)
            frame[1] = mid  # the head, once the tail is reversed
            if k > 1:
                frames.append([mid, hi, k - 1, later])
                hold(1)
            else:  # one state: the last step's state is the running one, not stored
                ct = reverse(mid, hi, later, ct)
        return ct


def checkpoint_loop(step: Callable[..., Any], x0: Any, n: int, *args: Any,
                    schedule: str = "revolve", snapshots: int | None = None,
                    segment_length: int | None = None) -> Any:
    """``n`` steps ``x = step(x, *args)`` from ``x0`` under reverse mode in memory that
    grows like ``sqrt(n)`` rather than ``n``: the state after the last step.

    A plain Python loop under ``grad`` keeps every operation of every step on the tape.
    Here the loop is one tape entry keeping ``x0``, ``args`` and the final state; the
    forward pass stores a few states, and the backward pass runs steps again from them,
    recording one stretch at a time. The derivatives are those of the plain loop (the
    same operations on the same values, in the same order).

    Schedules:

    - ``"revolve"`` (default): the binomial schedule of Griewank and Walther, holding at
      most ``snapshots`` states (``x0`` included) and one step's tape, with the fewest
      runs of ``step`` possible for that memory: with ``t = repetitions`` the smallest
      ``t`` such that ``C(s + t, s) >= n``, ``step`` runs
      ``n + 1 + t n - C(s + t, t - 1)`` times in all (``n`` of them recorded). The
      default ``snapshots`` is the smallest with ``t <= 2`` (about ``sqrt(2 n)``).
    - ``"segments"``: ``n / m`` stored states and an ``m``-step tape (``segment_length``
      ``m``, default ``ceil(sqrt(n))``); ``step`` runs ``2 n`` times (PyTorch's
      ``checkpoint_sequential``).
    - ``"store_all"``: the plain loop on the tape (no checkpointing), for comparison.

    ``step(x, *args)`` returns the next state, of ``x0``'s structure and shapes (a pytree
    of float arrays: carry a running cost or the time in it). The traced values in
    ``args`` (however nested: pytrees, objects) and in ``step``'s closure get their
    derivatives, summed over the steps; other arguments are passed through. Where no
    tape is the innermost trace (forward mode, ``vmap``, a plain call) it is the plain
    loop. ``step`` runs more than ``n``
    times: randomness and side effects in it repeat.

    Args:
        step: ``step(x, *args) -> x_next``.
        x0: the initial state (an array or a pytree of float arrays).
        n: the number of steps (an int >= 0).
        *args: passed to every step.
        schedule: ``"revolve"``, ``"segments"`` or ``"store_all"``.
        snapshots: for ``"revolve"``, the most states held at once (>= 1).
        segment_length: for ``"segments"``, the steps recorded at once (>= 1).
    Returns:
        The state after ``n`` steps.
    Raises:
        CheckpointError: an unknown schedule, a keyword of another schedule, a count
            below 1, a state that is not float arrays, or a step that changes its
            structure or shapes.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> step = lambda x, a: x + 0.01 * np.sin(a * x)
        >>> loss = lambda a, **kw: np.sum(dr.checkpoint_loop(step, np.ones(3), 400, a, **kw))
        >>> g = dr.grad(loss)(1.5)
        >>> bool(abs(g - dr.grad(loss)(1.5, schedule="store_all")) < 1e-12)
        True
    """
    name = f"checkpoint_loop({getattr(step, '__name__', 'step')})"
    n, size = _check_loop(name, n, schedule, snapshots, segment_length)
    sleaves, sdef = tree_flatten(x0)
    if not sleaves or not all(_is_diff(v) for v in sleaves) or any(
            dtype_of(v).kind not in "fc" for v in sleaves):
        raise CheckpointError(
            f"dualrev: {name}: the state x0 must be a float (or complex) array or a pytree "
            f"of them; it is {sdef!r} with leaves of dtypes "
            f"{[str(dtype_of(v)) if _is_diff(v) else type(v).__name__ for v in sleaves]}. "
            "Cast it (np.asarray(x0, float)); keep integer counters out of the state")
    # the traced values step reaches (in args, however nested, and in its closure)
    g, params = lift(functools.partial(_call_step, step, args))
    top = _innermost([*sleaves, *params])
    if type(top) is not Traced or schedule == "store_all" or n == 0:
        x = x0
        for _ in range(n):
            x = step(x, *args)
        return x
    leaves = [*sleaves, *params]
    body = _LoopBody(g, len(sleaves), sdef, n, schedule, size, name)
    out = bind(checkpoint_p, leaves, {"body": body})
    return out if body.box.layout is None else _unpack(out, body.box.layout)


def _check_loop(name: str, n: Any, schedule: str, snapshots: int | None,
                segment_length: int | None) -> tuple[int, int]:
    """``n`` as an int and the schedule's size (states or segment length)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise CheckpointError(f"dualrev: {name}: n must be an int >= 0, not {n!r}")
    n = int(n)
    if schedule not in SCHEDULES:
        raise CheckpointError(
            f"dualrev: {name}: unknown schedule {schedule!r}; use one of {SCHEDULES}")
    if schedule != "revolve" and snapshots is not None:
        raise CheckpointError(
            f"dualrev: {name}: snapshots= is the revolve schedule's; with "
            f"schedule={schedule!r} it would be ignored (use segment_length= for segments)")
    if schedule != "segments" and segment_length is not None:
        raise CheckpointError(
            f"dualrev: {name}: segment_length= is the segments schedule's; with "
            f"schedule={schedule!r} it would be ignored (use snapshots= for revolve)")
    size = snapshots if schedule == "revolve" else segment_length
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer))
                             or size < 1):
        what = "snapshots" if schedule == "revolve" else "segment_length"
        raise CheckpointError(f"dualrev: {name}: {what} must be an int >= 1, not {size!r}")
    if size is None:
        if schedule == "segments":
            size = max(1, isqrt(max(n - 1, 0)) + 1)  # ceil(sqrt(n))
        else:
            size = 1
            while binomial(size, 2) < n:
                size += 1
    return n, int(size)
