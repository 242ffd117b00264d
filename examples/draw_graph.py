"""Draw the seeds' graph e = (a + b)(b + 1) with dualrev.graph: the forward values on the
nodes, and after the backward pass each node's gradient and what each edge hands back
(de/dc = d = 2, de/dd = c = 3, and de/db = 2 + 3 = 5, b being reached along two edges);
then a training loop of 20 gradient steps, whose steps fold into one block.

Usage: python examples/draw_graph.py [out.svg]   (default: a temporary folder)
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

import dualrev as dr


def e(a, b):
    c = a + b
    d = b + 1
    return c * d


def loss(w, x, y):
    return np.sum((np.tanh(x @ w) - y) ** 2)


X = np.array([[1.0, 2.0], [0.5, -1.0], [-1.5, 0.0]])
Y = np.array([0.5, -0.5, 1.0])


def train(w):
    """Twenty gradient steps in a Python loop: drawn as one folded block."""
    for _ in range(20):
        w = w - 0.1 * dr.grad(loss)(w, X, Y)
    return loss(w, X, Y)


def main() -> None:
    g = dr.graph(e)(2.0, 1.0)
    print(g)   # the text form, one line per value, in topological order
    print("de/dc =", g["c"].grad, " de/dd =", g["d"].grad, " de/db =", g["b"].grad)
    t = dr.graph(train)(np.array([0.1, -0.2]))
    (block,) = [n for n in t.nodes if n.kind == "group"]
    print(f"training loop: {len(t.nodes)} nodes folded ({block.name}), "
          f"{len(t.view(expand=True).nodes)} expanded; drawn {t.preferred_direction()}")
    given = sys.argv[1] if len(sys.argv) > 1 else ""
    out = Path(given) if given.endswith((".svg", ".dot", ".txt")) else (
        Path(tempfile.mkdtemp()) / "e.svg")
    print("wrote", g.save(out))   # .svg: dualrev's own layout, no Graphviz needed


if __name__ == "__main__":
    main()
