"""A recorded program: the straight-line list of primitives one call of a transformed
function ran on plain values, with the guards its control flow depended on.

``dualrev.replay`` records a ``Program`` from one call (forward pass, backward pass and
every batched pass of the transform included: they are all primitives on plain values
under the recording) and runs it for later calls with new inputs, without the user's
Python. Values live in numbered slots: the program's inputs, its constants (plain values
an operation met, kept as recorded) and each step's output. A ``Guard`` states something
the recording took from a value (``if x > 0``, ``float(x)``, a shape) and that replaying
must find again; when it does not, the caller records anew.

This module holds the data and the reference interpreter (``Program.run``); recording is
the staging trace's, compiling to Python source the replay's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import ProgramCallError
from .primitive import Primitive, apply_plain
from .tree import LEAF, TreeDef, tree_flatten, tree_unflatten


class Op:
    """One step: ``slots[out] = prim(*[slots[a] for a in args], **params)``.

    Args:
        prim: the primitive (its ``impl``, or ``scalar_impl`` on Python floats).
        args: the slot of each positional argument.
        params: the static keyword parameters, as recorded.
        out: the slot the result goes to.
    """

    __slots__ = ("prim", "args", "params", "out")

    def __init__(self, prim: Primitive, args: tuple[int, ...], params: dict[str, Any],
                 out: int) -> None:
        self.prim = prim
        self.args = args
        self.params = params
        self.out = out

    def __repr__(self) -> str:
        args = ", ".join(f"v{a}" for a in self.args)
        params = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"v{self.out} = {self.prim.name}({args}{params})"


#: what a guard checks of its slot's value (see ``Guard``)
GUARD_KINDS = ("truth", "equal", "shape", "finite")


class Guard:
    """A fact about a slot's value that the recording relied on.

    Kinds: ``"truth"`` — ``bool(value) == expected`` (an ``if`` on a comparison);
    ``"equal"`` — the value has exactly the recorded bits, shape and dtype (``float(x)``,
    an index computed from values, a value read by a rule as a plain number);
    ``"shape"`` — ``np.shape(value) == expected`` (an operation whose output shape depends
    on its values); ``"finite"`` — whether every element is finite equals ``expected``
    (the transforms take another path for non-finite results).

    Args:
        slot: the slot whose value is checked.
        kind: one of ``GUARD_KINDS``.
        expected: the recorded outcome (a bool, a value, a shape).
        where: the user's line that took the decision, for the re-recording report.
    """

    __slots__ = ("slot", "kind", "expected", "where")

    def __init__(self, slot: int, kind: str, expected: Any, where: str | None = None) -> None:
        if kind not in GUARD_KINDS:
            raise ValueError(f"unknown guard kind {kind!r}")
        self.slot = slot
        self.kind = kind
        self.expected = expected
        self.where = where

    def holds(self, value: Any) -> bool:
        """Whether ``value`` (this slot's value on a replay) passes the guard."""
        kind = self.kind
        if kind == "truth":
            return bool(value) == self.expected
        if kind == "shape":
            return np.shape(value) == self.expected
        if kind == "finite":
            return _all_finite(value) == self.expected
        return same_value(value, self.expected)

    def __repr__(self) -> str:
        return f"guard {self.kind}(v{self.slot}) == {self.expected!r}"


class GuardFailed(Exception):  # noqa: N818  (control flow, never reaches users)
    """A replay met a value that fails one of its program's guards."""

    def __init__(self, guard: Guard) -> None:
        super().__init__(repr(guard))
        self.guard = guard


def same_value(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are the same value bit for bit (type family, shape, dtype,
    nan and -0.0 included)."""
    if type(a) is not type(b) and not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
        return False
    if isinstance(a, (bool, int, str, type(None))):
        return a == b
    aa = np.asarray(a)
    bb = np.asarray(b)
    if aa.shape != bb.shape or aa.dtype != bb.dtype:
        return False
    if aa.dtype.kind in "fc":
        return aa.tobytes() == bb.tobytes()
    return bool(np.array_equal(aa, bb))


def _all_finite(v: Any) -> bool:
    try:
        return bool(np.all(np.isfinite(v)))
    except TypeError:
        return True


class Program:
    """A recorded program: slots, steps and where inputs and outputs live.

    Args:
        n_slots: how many slots the steps use.
        inputs: the slot of each input leaf, in the flattened order of the arguments.
        consts: slot -> the constant recorded there.
        steps: ``Op`` and ``Guard`` steps in execution order.
        outputs: the slot of each output leaf.
        out_def: the structure of the output (``dualrev.tree.TreeDef``).
        out_types: the type of each recorded output (``float``, ``numpy.float64``,
            ``numpy.ndarray``...), so that a replay returns what the call returned.
    """

    __slots__ = ("n_slots", "inputs", "consts", "steps", "outputs", "out_def", "out_types",
                 "meta")

    def __init__(self, n_slots: int, inputs: Sequence[int], consts: dict[int, Any],
                 steps: list[Op | Guard], outputs: Sequence[int],
                 out_def: TreeDef = LEAF, out_types: Sequence[type] = ()) -> None:
        self.n_slots = n_slots
        self.inputs = tuple(inputs)
        self.consts = consts
        self.steps = steps
        self.outputs = tuple(outputs)
        self.out_def = out_def
        self.out_types = tuple(out_types)
        #: free-form facts about the recording (the transform's name, the signature)
        self.meta: dict[str, Any] = {}

    @property
    def ops(self) -> list[Op]:
        """The operations, without the guards."""
        return [s for s in self.steps if type(s) is Op]

    @property
    def guards(self) -> list[Guard]:
        """The guards, in the order they are checked."""
        return [s for s in self.steps if type(s) is Guard]

    def run(self, leaves: Sequence[Any]) -> list[Any]:
        """Run the program on the input leaves (the reference interpreter); returns the
        output leaves. Raises ``GuardFailed`` at the first guard that does not hold."""
        v = self.run_slots(leaves)
        return [v[o] for o in self.outputs]

    def run_slots(self, leaves: Sequence[Any]) -> list[Any]:
        """``run``, returning every slot's value (the drawing shows them)."""
        if len(leaves) != len(self.inputs):
            raise ValueError(f"the program takes {len(self.inputs)} input leaves, "
                             f"got {len(leaves)}")
        v: list[Any] = [None] * self.n_slots
        for s, c in self.consts.items():
            v[s] = c
        for s, x in zip(self.inputs, leaves, strict=True):
            v[s] = x
        for step in self.steps:
            if type(step) is Op:
                v[step.out] = apply_plain(step.prim, [v[a] for a in step.args], step.params)
            elif not step.holds(v[step.slot]):
                raise GuardFailed(step)
        return v

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the program on a call's arguments, as the recorded function was called:
        the arguments must have the recorded signature (``meta["call"]``: pytree
        structure, each array's shape, dtype and layout, the static arguments' values),
        and the result has the recorded structure and types (an argument the call wrote
        into is written). A failing guard raises ``ProgramCallError`` (a program has
        nothing to record again from; a replayed function records such calls itself)."""
        sig = CallSignature.of(self)
        if sig is None:
            raise ProgramCallError(
                "dualrev: this program has no recorded call signature (it was built by "
                "hand); run it on its input leaves with program.run(leaves)")
        leaves = sig.inputs(args, kwargs)
        try:
            outs = self.run(leaves)
        except GuardFailed as e:
            g = e.guard
            where = f" (recorded at {g.where})" if g.where else ""
            raise ProgramCallError(
                f"dualrev: these arguments fail the program's {g!r}{where}: the recorded "
                "function took another branch or read another value for them, and a "
                "program cannot record again. Call dr.replay(f) on the function for such "
                "arguments (or record and save a program for them)") from None
        # outputs past the result's leaves are arguments the call wrote into (replay's
        # meta["writeback"]: (input, output) positions): so does this call
        for k, j in self.meta.get("writeback", ()):
            np.copyto(leaves[k], outs[j], casting="unsafe")
        outs = outs[:self.out_def.num_leaves]
        if self.out_types:
            outs = [o if type(o) is t else _as_type(o, t)
                    for o, t in zip(outs, self.out_types, strict=True)]
        # an output that is a constant, an input, another output or a view (of a
        # constant, perhaps) is a copy: the caller may write into what it gets, and the
        # program's constants must stay as recorded
        seen: set[int] = set()
        for k, s in enumerate(self.outputs[:len(outs)]):
            o = outs[k]
            if type(o) is np.ndarray and (s in seen or s in self.consts or s in self.inputs
                                          or o.base is not None or not o.flags.writeable):
                outs[k] = o.copy()
            seen.add(s)
        return outs[0] if self.out_def is LEAF else tree_unflatten(self.out_def, outs)

    def __repr__(self) -> str:
        lines = [f"program({', '.join(f'v{i}' for i in self.inputs)}):"]
        lines += [f"  {s!r}" for s in self.steps]
        lines.append(f"  return {', '.join(f'v{o}' for o in self.outputs)}")
        return "\n".join(lines)


def _as_type(o: Any, t: type) -> Any:
    """An output as the type the recorded call returned."""
    if t is float or t is complex or t is int or t is bool:
        return t(o)
    if t is np.ndarray:
        return np.asarray(o)
    if isinstance(t, type) and issubclass(t, np.generic):
        return t(np.asarray(o)[()])
    return o


#: the scalar types a replay takes as inputs (their values change between calls)
DYNAMIC_SCALARS = (float, complex, np.floating, np.complexfloating)


class CallSignature:
    """What a program was recorded for: the positional arguments taken as static
    (``static_argnums``) with their values, the pytree structure of the others
    (``(args, kwargs)`` where there are keyword arguments or static ones, else
    ``args``), and per leaf either ``("input", type, shape, dtype, layout)`` (an array,
    its layout ``"C"``, ``"F"`` or ``"strided"``: whether NumPy's view functions give
    views or copies follows it; a float or complex scalar input has shape, dtype and
    layout None) or ``("static", type, value)``. A replay sets it at recording
    (``meta["call"]``, ``from_call``); a loaded program has it from its file.

    Args:
        static: ``(position, value)`` of each static positional argument.
        tree: the structure of the other arguments.
        leaves: one entry per leaf of ``tree``, as above.
    """

    __slots__ = ("static", "tree", "leaves")

    def __init__(self, static: Sequence[tuple[int, Any]], tree: TreeDef,
                 leaves: Sequence[tuple[Any, ...]]) -> None:
        self.static = tuple(static)
        self.tree = tree
        self.leaves = tuple(leaves)

    @classmethod
    def of(cls, program: Program) -> CallSignature | None:
        """The program's signature (``meta["call"]``), or None: a program built by hand,
        or one whose inputs do not match it."""
        sig = program.meta.get("call")
        if not isinstance(sig, CallSignature):
            return None
        if sum(1 for s in sig.leaves if s[0] == "input") != len(program.inputs):
            return None
        return sig

    @classmethod
    def from_call(cls, args: tuple[Any, ...], kwargs: dict[str, Any],
                  static_argnums: Sequence[int] = ()) -> CallSignature:
        """The signature of a call as ``dualrev.replay`` keys it: arrays and float or
        complex scalars (Python's and NumPy's) are inputs, other leaves static."""
        n = len(args)
        static = sorted({i % n for i in static_argnums if -n <= i < n})
        if static:
            tree: Any = (tuple(a for i, a in enumerate(args) if i not in static), kwargs)
        else:
            tree = (args, kwargs) if kwargs else args
        leaves, td = tree_flatten(tree)
        specs: list[tuple[Any, ...]] = []
        for v in leaves:
            t = type(v)
            if t is np.ndarray:
                specs.append(("input", t, v.shape, v.dtype, layout_of(v)))
            elif t is float or isinstance(v, DYNAMIC_SCALARS):
                specs.append(("input", t, None, None, None))
            else:
                specs.append(("static", t, v))
        return cls([(i, args[i]) for i in static], td, specs)

    def inputs(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        """The program's input leaves from a call's arguments; ``ProgramCallError``
        where they do not have this signature."""
        n = len(args)
        skip = set()
        for pos, value in self.static:
            if pos >= n:
                raise ProgramCallError(f"dualrev: the program was recorded with a static "
                                       f"argument at position {pos}; got {n} arguments")
            if not _same_static(args[pos], value):
                raise ProgramCallError(
                    f"dualrev: static argument {pos} is {args[pos]!r}; the program was "
                    f"recorded for {value!r}")
            skip.add(pos)
        if skip:
            tree: Any = (tuple(a for i, a in enumerate(args) if i not in skip), kwargs)
        else:
            tree = (args, kwargs) if kwargs else args
        leaves, td = tree_flatten(tree)
        if td != self.tree:
            raise ProgramCallError(f"dualrev: the arguments have the structure {td}; the "
                                   f"program was recorded for {self.tree}")
        out = []
        for k, (v, spec) in enumerate(zip(leaves, self.leaves, strict=True)):
            if spec[0] == "static":
                if not _same_static(v, spec[2]):
                    raise ProgramCallError(f"dualrev: argument leaf {k} is {v!r}; the "
                                           f"program was recorded for {spec[2]!r}")
                continue
            _, t, shape, dtype, layout = spec
            if type(v) is not t:
                raise ProgramCallError(f"dualrev: argument leaf {k} is a "
                                       f"{type(v).__name__}; the program was recorded for "
                                       f"a {t.__name__}")
            if shape is not None and (v.shape != tuple(shape) or v.dtype != dtype):
                raise ProgramCallError(
                    f"dualrev: argument leaf {k} has shape {v.shape} and dtype {v.dtype}; "
                    f"the program was recorded for shape {tuple(shape)} and dtype {dtype}")
            if layout is not None and layout_of(v) != layout:
                hint = "; pass np.ascontiguousarray(x)" if layout == "C" else ""
                raise ProgramCallError(
                    f"dualrev: argument leaf {k} is laid out {layout_of(v)}; the program "
                    f"was recorded for a {layout} array (whether NumPy's view functions "
                    f"give views or copies follows the layout){hint}")
            out.append(v)
        return out


def layout_of(a: np.ndarray) -> str:
    """An array's layout as a signature tells it: ``"C"`` (C-contiguous), ``"F"``
    (Fortran-contiguous only) or ``"strided"``."""
    fl = a.flags
    return "C" if fl.c_contiguous else "F" if fl.f_contiguous else "strided"


def _same_static(a: Any, b: Any) -> bool:
    """Whether a static argument is the recorded one (the same object, or the same type
    and an equal value)."""
    if a is b:
        return True
    try:
        return type(a) is type(b) and bool(a == b)
    except (TypeError, ValueError):
        return False
