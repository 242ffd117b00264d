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

from .primitive import Primitive, apply_plain
from .tree import LEAF, TreeDef


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
        return [v[o] for o in self.outputs]

    def __repr__(self) -> str:
        lines = [f"program({', '.join(f'v{i}' for i in self.inputs)}):"]
        lines += [f"  {s!r}" for s in self.steps]
        lines.append(f"  return {', '.join(f'v{o}' for o in self.outputs)}")
        return "\n".join(lines)
