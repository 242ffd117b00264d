"""Drawing computational graphs: ``dualrev.graph(f)(*args)`` records ``f`` once and returns
a ``Graph`` (values forward on the nodes, gradients backward along the edges) that writes
itself as SVG (a pure-Python layered layout), Graphviz DOT or text.

``dualrev.graph`` is the function; this package holds it (``record.py``), the layout
(``layout.py``), the writers (``render.py``) and the command line (``cli.py``), which
``python -m dualrev.graph`` runs.
"""

from __future__ import annotations

from .cli import main
from .layout import Layout, layered_layout, overlaps
from .record import Edge, Graph, Node, graph

__all__ = ["Edge", "Graph", "Layout", "Node", "graph", "layered_layout", "main", "overlaps"]
