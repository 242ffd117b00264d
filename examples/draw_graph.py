"""Draw the seeds' graph e = (a + b)(b + 1) with dualrev.graph: the forward values on the
nodes, and after the backward pass each node's gradient and what each edge hands back
(de/dc = d = 2, de/dd = c = 3, and de/db = 2 + 3 = 5, b being reached along two edges).

Usage: python examples/draw_graph.py [out.svg]   (default: a temporary folder)
"""

import sys
import tempfile
from pathlib import Path

import dualrev as dr


def e(a, b):
    c = a + b
    d = b + 1
    return c * d


def main() -> None:
    g = dr.graph(e)(2.0, 1.0)
    print(g)   # the text form, one line per value, in topological order
    print("de/dc =", g["c"].grad, " de/dd =", g["d"].grad, " de/db =", g["b"].grad)
    given = sys.argv[1] if len(sys.argv) > 1 else ""
    out = Path(given) if given.endswith((".svg", ".dot", ".txt")) else (
        Path(tempfile.mkdtemp()) / "e.svg")
    print("wrote", g.save(out))   # .svg: dualrev's own layout, no Graphviz needed


if __name__ == "__main__":
    main()
