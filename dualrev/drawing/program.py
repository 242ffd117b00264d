"""Drawing a recorded program (``dualrev.replay``'s ``programs``, ``dualrev.load_program``):
its steps as a ``Graph`` of the same kind ``dualrev.graph`` draws of a function, laid out
and written by the same code (layout.py, render.py).

A program is straight-line code on plain values: each input slot is an input node, each
constant a constant node, each operation an operation node with its value node, and each
guard a ``"guard"`` node reading the value it checks (what a replay must find again).
The program holds the derivative passes of its transform as ordinary operations, so the
graph is drawn in ``"values"`` mode: without values unless the program is run on inputs
for the drawing (``program_graph(program, *args)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DualrevError, ProgramCallError
from ..program import CallSignature, GuardFailed, Op, Program
from ..tree import TreeDef
from . import values as vals
from .record import (
    Edge,
    Graph,
    Node,
    _arg_name,
    _index_text,
    _labelled,
    _op_lines,
    _params_text,
    _symbol,
    _written,
)

_GUARD_TEXT = {"truth": "bool({}) is {}", "equal": "{} == {}", "shape": "{}.shape == {}",
               "finite": "all finite({}) is {}"}


class ProgramGraph(Graph):
    """The graph of a recorded ``Program`` (see ``program_graph``): a ``Graph`` with
    ``mode == "values"``, whose nodes are the program's inputs, constants, operations,
    their values, and its guards (``kind == "guard"``; ``guards`` lists them)."""

    def __init__(self, program: Program, slot_values: list[Any] | None = None,
                 title: str | None = None) -> None:
        self.program = program
        self.mode = "values"
        self.aux = None
        self.expand = True
        self.depth = None
        fn = program.meta.get("function")
        self.title = title or (f"program of {fn}" if isinstance(fn, str) else "program")
        self.nodes: list[Node] = []
        self.edges: list[Edge] = []
        self._build_program(slot_values)

    @property
    def guards(self) -> list[Node]:
        """The guard nodes, in the order a replay checks them."""
        return [n for n in self.nodes if n.kind == "guard"]

    def view(self, expand: bool | None = None, depth: Any = None) -> Graph:
        """A program's graph has no grouping to change: the graph itself."""
        return self

    def _build_program(self, slot_values: list[Any] | None) -> None:
        prog = self.program
        have = slot_values is not None

        def value_of(s: int) -> Any:
            return slot_values[s] if slot_values is not None else None

        def add(node: Node) -> Node:
            node.id = f"n{len(self.nodes)}"
            self.nodes.append(node)
            return node

        in_names = _input_names(prog)
        n_out = prog.out_def.num_leaves if prog.out_types else len(prog.outputs)
        out_names = _output_names(prog.out_def, n_out)
        # outputs past the result: arguments the call wrote into (replay's writeback)
        for k, _ in prog.meta.get("writeback", ()):
            out_names.append(f"{in_names[k]} (written)")
        out_slot_names: dict[int, str] = {}
        for s, name in zip(prog.outputs, out_names, strict=True):
            out_slot_names.setdefault(s, name)
        node_of: dict[int, Node] = {}
        for s, name, spec in zip(prog.inputs, in_names, _input_specs(prog), strict=True):
            node = add(Node("", "input", name, value=value_of(s), entry=s,
                            output=s in out_slot_names))
            node.lines = (_labelled(f"{name} = ", vals.lines(node.value)) if have
                          else [f"{name}: {spec}"])
            node.split = len(node.lines)
            node_of[s] = node

        def const(s: int) -> Node:
            node = node_of.get(s)
            if node is None:
                v = prog.consts[s]
                text = _const_text(v)
                node = add(Node("", "const", text, value=v, entry=s,
                                output=s in out_slot_names))
                small = not isinstance(v, np.ndarray) or v.size <= vals.SMALL
                node.lines = vals.lines(v) if small else [text]
                node_of[s] = node
            return node

        for k, step in enumerate(prog.steps):
            if type(step) is Op:
                prim = step.prim
                sym = _symbol(prim, step.params)
                if prim.name == "getitem" and "idx" in step.params:
                    sym = f"[{_index_text(step.params['idx'])}]"
                arg_values = [value_of(a) for a in step.args] if have else []
                params = step.params
                if "idx" in params and prim.name in ("set", "scatter_add"):  # in the label
                    params = {k: v for k, v in params.items() if k not in ("idx", "shape")}
                detail = _params_text(prim, params, arg_values)
                op = add(Node("", "op", sym, entry=k, detail=detail))
                srcs = []
                for pos, a in enumerate(step.args):
                    src = node_of.get(a) or const(a)
                    self.edges.append(Edge(src.id, op.id, pos,
                                           differentiable=src.kind != "const"))
                    srcs.append(_arg_name(src))
                _op_lines(op, _written(prim, step.params, sym, srcs))
                name = out_slot_names.get(step.out, f"v{step.out}")
                v = add(Node("", "value", name, value=value_of(step.out), entry=step.out,
                             output=step.out in out_slot_names))
                v.lines = (_labelled(f"{name} = ", vals.lines(v.value)) if have else [name])
                v.split = len(v.lines)
                node_of[step.out] = v
                self.edges.append(Edge(op.id, v.id))
            else:
                src = node_of.get(step.slot) or const(step.slot)
                text = _GUARD_TEXT[step.kind].format(src.name, _expected_text(step.expected))
                g = add(Node("", "guard", f"guard {text}", entry=k,
                             detail=step.where or ""))
                g.lines = [f"guard {text}"] + ([_short_where(step.where)] if step.where else [])
                self.edges.append(Edge(src.id, g.id, 0, differentiable=False))
        outputs: list[Node] = []
        for s in prog.outputs:
            node = node_of.get(s) or const(s)
            node.output = True
            if not any(node is o for o in outputs):
                outputs.append(node)
        self._outputs = outputs


def _input_specs(prog: Program) -> list[str]:
    """Each input's type, shape and dtype as recorded (``f64[3]``), where known."""
    sig = CallSignature.of(prog)
    specs: list[str] = []
    if sig is not None:
        for spec in sig.leaves:
            if spec[0] != "input":
                continue
            _, t, shape, dtype, _ = spec
            if shape is not None:
                specs.append(f"{vals.dtype_name(np.dtype(dtype))}[{','.join(map(str, shape))}]")
            else:
                specs.append(t.__name__)
    if len(specs) != len(prog.inputs):
        specs = ["input"] * len(prog.inputs)
    return specs


def _input_names(prog: Program) -> list[str]:
    return [f"x{k}" for k in range(len(prog.inputs))] if len(prog.inputs) > 1 else ["x"]


def _output_names(td: TreeDef, n: int) -> list[str]:
    if n == 1:
        return ["out"]
    return [f"out[{k}]" for k in range(n)]


def _const_text(v: Any) -> str:
    if isinstance(v, np.ndarray) and v.size > vals.SMALL:
        return vals.shape_name(v)
    try:
        return vals.one_line(v)
    except (TypeError, ValueError):
        return repr(v)[:24]


def _expected_text(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return vals.shape_name(v) if v.size > vals.SHORT else vals.one_line(v)
    return repr(v) if not isinstance(v, (float, np.floating)) else vals.number(v)


def _short_where(where: str) -> str:
    return where if len(where) <= 60 else "..." + where[-57:]


def program_graph(program: Program, *args: Any, **kwargs: Any) -> ProgramGraph:
    """The graph of a recorded program: ``dualrev.graph(program)`` calls it.

    Nodes: the inputs (``x``, or ``x0``, ``x1``, ... in the order of the input leaves;
    labelled with the recorded dtype and shape, ``f64[3]``), the constants, each
    operation (``np.sin``, ``*``, ``[1:]``, its parameters as ``detail``) with its value
    node (``v<slot>``; the outputs ``out`` or ``out[k]``), and each guard (``kind ==
    "guard"``: ``guard bool(v7) is True``, its source line as ``detail``) with an edge
    from the value it checks. Drawn by the same layout and writers as ``dualrev.graph``'s
    graphs (``to_svg``, ``to_dot``, ``save``, ``str``), in ``"values"`` mode.

    Args:
        program: a ``Program`` (``dualrev.replay(f).programs``, ``dualrev.load_program``).
        *args: optional: arguments to run the program on, as the recorded function is
            called (checked against the recorded signature), so that each node shows its
            value; without them the graph has the structure only.
        **kwargs: the keyword arguments of that call.
    Returns:
        A ``ProgramGraph`` (a ``dualrev.drawing.Graph``).
    Raises:
        ProgramCallError: the arguments do not fit the recorded signature, or fail a
            guard.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> f = dr.replay(dr.grad(lambda x: np.sum(np.sin(x))))
        >>> _ = f(np.array([0.5, 1.0]))
        >>> g = dr.graph(f.programs[0])
        >>> [n.name for n in g.nodes if n.kind == "op"]
        ['np.sin', 'np.sum', 'np.cos', '*']
    """
    if not isinstance(program, Program):
        raise DualrevError(f"dualrev.graph: a recorded Program is needed, got "
                           f"{type(program).__name__}")
    slot_values = None
    if args or kwargs:
        sig = CallSignature.of(program)
        if sig is None:
            raise ProgramCallError("dualrev.graph: this program has no recorded call "
                                   "signature to take arguments by")
        slot_values = _run_keeping(program, sig.inputs(args, kwargs))
    return ProgramGraph(program, slot_values)


def _run_keeping(program: Program, leaves: list[Any]) -> list[Any]:
    """Every slot's value after running the program on ``leaves``."""
    try:
        return program.run_slots(leaves)
    except GuardFailed as e:
        raise ProgramCallError(f"dualrev.graph: these arguments fail the program's "
                               f"{e.guard!r}") from None
