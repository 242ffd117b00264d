"""Structural sparsity detection: the ``Pattern`` value and the trace that propagates it.

A third kind of trace beside forward (``Dual``) and reverse (``Tape``): each value
carries, beside its value at the given point, its dependency pattern (which input
elements each of its elements may depend on, for every input: dualrev/pattern_rules.py).
Every primitive maps its arguments' patterns to its output's by the rule its catalogue
entry declares (``Primitive.defpattern``); elementwise entries need none; a primitive
without one makes its output depend densely on what its arguments depend on, with a
note. One run of the function gives the Jacobian's pattern; a run of its gradient
(reverse mode nested inside) gives the Hessian's, as every higher derivative comes from
nesting.

Like a ``dualrev.replay`` recording, the trace is a *value level* below every transform
(``Tracer._staged``): control flow on values (``if x > 0``), indices computed from values
and rules' decisions take the value at the given point, and each such decision is noted
with the user's line (``SparsityTrace.notes``): the pattern then holds where those
decisions come out the same. Converting a value that depends on the input to a plain
number (``float(x)``) loses its dependencies and is refused, as under any transform.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import pattern_rules
from .diagnose import user_frame
from .errors import EscapedTracerError
from .pattern_rules import Deps
from .primitive import Primitive, Trace, Tracer, bind, shape_of
from .tracer import TracedBase, _conversion, note_finished, note_running


class SparsityTrace(Trace):
    """One structural sparsity detection: its level, the number ``n`` of input elements
    (the patterns' columns) and the ``notes`` of what the pattern relies on.

    Args:
        level: its nesting level, older than every transform run inside it.
        n: the number of input elements.
    """

    __slots__ = ("level", "n", "notes", "what", "_seen")
    finished = False

    def __init__(self, level: int, n: int) -> None:
        self.level = level
        self.n = n
        self.what = "a sparsity detection"
        #: what the pattern relies on: decisions taken on values at the given point,
        #: primitives without a pattern rule (dense blocks); one line each
        self.notes: list[str] = []
        self._seen: set[str] = set()
        note_running(self)

    # ------------------------------------------------------------------ values
    def input(self, value: Any, offset: int) -> Pattern:
        """The input ``value`` whose elements are inputs ``offset``, ``offset + 1``, ..."""
        size = int(np.size(value))
        rows = np.arange(size)
        deps = Deps((np.ones(size, dtype=bool), (rows, rows + offset)), shape=(size, self.n))
        x = Pattern(value, deps, self)
        if type(value) is np.ndarray and not value.ndim:
            x._array0d = True
        return x

    def constant(self, value: Any) -> Pattern:
        """``value`` as a value of this detection that depends on no input (a buffer the
        user's code writes into: dualrev/buffers.py)."""
        return Pattern(value, pattern_rules.empty(int(np.size(value)), self.n), self)

    def note(self, text: str) -> None:
        """Add a note (once per text and user line)."""
        frame = user_frame()
        where = "" if frame is None else f" ({frame.f_code.co_filename}:{frame.f_lineno})"
        line = text + where
        if line not in self._seen:
            self._seen.add(line)
            self.notes.append(line)

    # ------------------------------------------------------------------ operations
    def process(self, prim: Primitive, args: Sequence[Any], params: dict[str, Any]) -> Any:
        primals = []
        deps: list[Deps | None] = []
        level = self.level
        traced = False
        for a in args:
            if type(a) is Pattern and a._level == level:
                primals.append(a.primal)
                deps.append(a.tangent)
                traced = True
            else:
                if isinstance(a, Tracer):
                    raise EscapedTracerError(self.what, prim.name)
                primals.append(a)
                deps.append(None)
        ans = bind(prim, primals, params)
        if not traced:
            return ans
        if isinstance(ans, (tuple, list)):
            return self._several(prim, ans, deps, primals, params)
        kind = np.result_type(ans).kind if not isinstance(ans, Tracer) else "f"
        if prim.nondiff or kind not in "fc" or not any(d is not None and d.nnz for d in deps):
            # computed from the input without a derivative (a comparison, an index):
            # no dependency, but not a constant either (its zeros are not structural)
            return Pattern(ans, pattern_rules.empty(_size(ans), self.n), self)
        out = self._rule(prim, deps, ans, primals, params)
        if out is None:
            out = pattern_rules.empty(_size(ans), self.n)
        elif out.shape != (_size(ans), self.n):
            raise AssertionError(f"{prim.name}: its pattern rule gave {out.shape[0]} rows "
                                 f"for an output of {_size(ans)} elements")
        return Pattern(ans, out, self)

    def _rule(self, prim: Primitive, deps: list[Deps | None], ans: Any,
              primals: list[Any], params: dict[str, Any]) -> Deps | None:
        rule = prim.pattern
        if rule is None:
            if prim.elementwise and prim.custom is None:
                rule = pattern_rules.elementwise
            else:
                self.note(f"{prim.name} states no sparsity pattern: its output depends "
                          "densely on its inputs")
                rule = pattern_rules.dense
        return rule(deps, ans, *primals, **params)

    def _several(self, prim: Primitive, ans: Any, deps: list[Deps | None],
                 primals: list[Any], params: dict[str, Any]) -> Any:
        """A result of several values (rare: a shape query gives a tuple of ints):
        each part depends densely on the inputs."""
        items = []
        for v in ans:
            if isinstance(v, (np.ndarray, float, complex, np.inexact)):
                out = pattern_rules.dense(deps, v, *primals)
                items.append(Pattern(v, out if out is not None
                                     else pattern_rules.empty(_size(v), self.n), self))
            else:
                items.append(v)
        return type(ans)(items)

    def finish(self) -> None:
        """The detection has returned: a value of it used later raises."""
        self.__class__ = FinishedSparsityTrace
        note_finished(self)


class FinishedSparsityTrace(SparsityTrace):
    """A sparsity detection that has returned."""

    __slots__ = ()
    finished = True

    def process(self, prim: Primitive, args: Sequence[Any], params: dict[str, Any]) -> Any:
        raise EscapedTracerError(self.what, prim.name)

    def constant(self, value: Any) -> Pattern:
        raise EscapedTracerError(self.what, "an in-place write")


def _size(x: Any) -> int:
    return int(np.prod(shape_of(x), dtype=np.int64))


class Pattern(TracedBase):
    """A value of a structural sparsity detection: ``primal`` its value at the given point,
    ``tangent`` its dependency pattern (a boolean ``scipy.sparse.csr_matrix``, one row per
    element, one column per input element). Users meet one only inside the function whose
    pattern ``dualrev.sparse`` detects, where it behaves as the array it holds."""

    __slots__ = ()
    _staged = True  # a value level: conversions take the value at the given point

    def __init__(self, primal: Any, deps: Deps, trace: SparsityTrace) -> None:
        self.primal = primal
        self.tangent = deps
        self._trace = trace
        self._level = trace.level

    def __repr__(self) -> str:
        return f"Pattern({self.primal!r}, depends on {self.tangent.nnz} input entries)"

    def _depends(self) -> bool:
        return bool(self.tangent.nnz)

    def freeze(self) -> Any:
        """The value at the given point, read as a plain value by a decision (an index,
        a rule's choice of formula): noted, since the pattern then holds where the
        decision comes out the same."""
        if self._depends():
            self._trace.note("a value computed from the input was read as a plain value "
                             "(an index, a decision): the pattern holds where it is the same")
        else:
            self._trace.note("a value computed from the input decided the computation "
                             "(an index, a mask, a branch): the pattern holds where it "
                             "decides the same")
        return self.primal

    def derived(self, value: np.ndarray) -> Pattern:
        """``value``, a plain array computed from this value (positions it selects, a
        function's result on it), as a value of the detection computed from the input (no
        dependency; not a constant, so an index it gives is not read as one): the indexing
        machinery (dualrev/indexing.py, ``_gather_dependent``) and the plain calls of
        closures (primitive.py, ``call_plain``) make them."""
        return Pattern(value, pattern_rules.empty(int(np.size(value)), self._trace.n),
                       self._trace)

    def freeze_finite(self) -> bool:
        p = self.primal
        try:
            return bool(np.all(np.isfinite(p)))
        except TypeError:
            return True

    # --------------------------------------------------------- conversions
    def __bool__(self) -> bool:
        self._trace.note("a branch was taken on a value computed from the input: the "
                         "pattern holds where it is taken the same way")
        return bool(self.primal)

    def _plain(self, what: str, kind: str) -> Any:
        if self._depends():
            raise _conversion(what, kind)
        return self.freeze()

    def __float__(self) -> float:
        return float(self._plain("float()", "float"))

    def __int__(self) -> int:
        return int(self.freeze())

    def __index__(self) -> int:

        return operator.index(self._plain("use as an index (operator.index)", "index"))

    def __complex__(self) -> complex:
        return complex(self._plain("complex()", "float"))

    def item(self, *args: Any) -> Any:
        return np.asarray(self._plain(".item()", "item")).item(*args)

    def tolist(self) -> Any:
        return np.asarray(self._plain(".tolist()", "tolist")).tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.array(self._plain("np.asarray()", "asarray"), dtype=dtype, copy=True)

    def __format__(self, spec: str) -> str:
        return format(self.primal, spec)
