"""Reverse mode: the ``Tape`` that records primitives applied to ``Traced`` values, and
its backward pass.

The tape is a flat list in execution order, which is already a topological order, so
the backward pass is one loop over it in reverse: no recursion, whatever the depth.
"""

from __future__ import annotations

from typing import Any

from .errors import NoDerivativeRule
from .primitive import Primitive, bind, shape_of, unbroadcast
from .tracer import TracedBase


class Tape:
    """One reverse-mode transform call: a level and the list of recorded operations.

    Each entry is ``(prim, primals, params, ans, parents)`` where ``parents`` lists
    ``(argument position, entry index)`` for the traced arguments; inputs are entries
    with ``prim`` None.
    """

    __slots__ = ("level", "nodes")

    def __init__(self, level: int) -> None:
        self.level = level
        self.nodes: list[tuple[Any, ...]] = []

    def input(self, value: Any) -> Traced:
        """A new traced input on this tape."""
        self.nodes.append((None, (), None, value, ()))
        return Traced(value, self, len(self.nodes) - 1)

    def process(self, prim: Primitive, args: Any, params: dict[str, Any]) -> Any:
        level = self.level
        primals = []
        parents = []
        vjps = prim.vjps
        for i, a in enumerate(args):
            if type(a) is Traced and a._level == level:
                primals.append(a.primal)
                if vjps is None:
                    raise NoDerivativeRule(prim.name, "It has no VJP (reverse-mode) rule.")
                if vjps[i] is not None:
                    parents.append((i, a._index))
            else:
                primals.append(a)
        ans = bind(prim, primals, params)
        if not parents:
            return ans
        nodes = self.nodes
        nodes.append((prim, primals, params, ans, parents))
        return Traced(ans, self, len(nodes) - 1)

    def backward(self, seeds: dict[int, Any], nb: int = 0, keep: bool = False) -> list[Any]:
        """Pull cotangents from ``seeds`` (entry index -> cotangent) back to every entry.

        Returns the list of accumulated cotangents (None where nothing arrived); the
        inputs' entries hold the gradients. Without ``keep`` each entry is released as soon
        as it has been processed, so intermediates are freed during the pass.
        """
        nodes = self.nodes
        cts: list[Any] = [None] * len(nodes)
        for i, g in seeds.items():
            cts[i] = g if cts[i] is None else cts[i] + g
        for i in range(len(nodes) - 1, -1, -1):
            g = cts[i]
            node = nodes[i]
            prim = node[0]
            if prim is None:
                continue  # an input: its cotangent is a result
            if not keep:
                nodes[i] = _RELEASED
            if g is None:
                continue
            cts[i] = None
            _, primals, params, ans, parents = node
            rules = prim.vjps
            for argpos, pid in parents:
                c = rules[argpos](g, ans, *primals, **params)
                if prim.elementwise:
                    c = unbroadcast(c, nb, shape_of(primals[argpos]))
                prev = cts[pid]
                cts[pid] = c if prev is None else prev + c
        return cts


_RELEASED = (None, (), None, None, ())


class Traced(TracedBase):
    """A reverse-mode traced value: its ``primal`` value and its entry on a ``Tape``."""

    __slots__ = ("_index",)

    def __init__(self, primal: Any, tape: Tape, index: int) -> None:
        self.primal = primal
        self._trace = tape
        self._level = tape.level
        self._index = index

    def __repr__(self) -> str:
        return f"Traced({self.primal!r})"
