"""Drawing computational graphs: ``dualrev.graph(f)(*args)`` records ``f`` once and returns
a ``Graph`` (values forward on the nodes, gradients backward along the edges) that writes
itself as SVG (a pure-Python layered layout), Graphviz DOT or text.

``dualrev.graph`` is the function; this package holds it (``record.py``), the layout
(``layout.py``), the writers (``render.py``) and the command line (``cli.py``), which
``python -m dualrev.graph`` runs.
"""

from __future__ import annotations

import functools
from typing import Any

from ..program import Program
from . import record as _record
from .cli import main
from .layout import Layout, layered_layout, overlaps
from .program import ProgramGraph, program_graph
from .record import Edge, Graph, Node


@functools.wraps(_record.graph)
def graph(f: Any, *args: Any, **kwargs: Any) -> Any:
    # a recorded Program is drawn as it is (program.py); a function is recorded first
    if isinstance(f, Program):
        return program_graph(f, *args, **kwargs)
    return _record.graph(f, *args, **kwargs)


__all__ = ["Edge", "Graph", "Layout", "Node", "ProgramGraph", "graph", "layered_layout",
           "main", "overlaps", "program_graph"]
