"""Drawing computational graphs: ``dualrev.graph(f)(*args)`` records ``f`` once and returns
a ``Graph`` (values forward on the nodes, gradients backward along the edges) that writes
itself as SVG (a pure-Python layered layout), Graphviz DOT or text.

``dualrev.graph`` is the function; this package holds it (``record.py``), the layout
(``layout.py``), the writers (``render.py``) and the command line (``cli.py``), which
``python -m dualrev.graph`` runs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, overload

from ..program import Program
from . import record as _record
from .cli import main
from .layout import Layout, layered_layout, overlaps
from .program import ProgramGraph, program_graph
from .record import Edge, Graph, Node

P = ParamSpec("P")

if TYPE_CHECKING:  # the two calls as type checkers see them (functools.wraps hides both)

    @overload
    def graph(f: Program, *args: Any, **kwargs: Any) -> ProgramGraph: ...
    @overload
    def graph(f: Callable[P, Any], argnums: int | Sequence[int] | None = None,
              has_aux: bool = False, *, mode: str = "reverse", seed: Any = None,
              expand: bool = False, depth: int | None = None) -> Callable[P, Graph]: ...
    def graph(f: Any, *args: Any, **kwargs: Any) -> Any: ...

else:

    @functools.wraps(_record.graph)
    def graph(f: Any, *args: Any, **kwargs: Any) -> Any:
        # a recorded Program is drawn as it is (program.py); a function is recorded first
        if isinstance(f, Program):
            return program_graph(f, *args, **kwargs)
        return _record.graph(f, *args, **kwargs)


__all__ = ["Edge", "Graph", "Layout", "Node", "ProgramGraph", "graph", "layered_layout",
           "main", "overlaps", "program_graph"]
