"""The tutorial's figures, drawn by dualrev.graph: ``python docs/figures/make_figures.py``
rewrites the SVGs beside this file; ``--check`` only compares (exit status 1 if any is
stale). tests/test_drawing.py runs the comparison, so the committed pictures always
show what the code draws.

The pictures come from dualrev's own layout (``engine="python"``), which is
deterministic, so the files are the same on every machine.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

import dualrev as dr

HERE = Path(__file__).resolve().parent


def e(a, b):
    c = a + b
    d = b + 1
    return c * d


def g(x, y, z):
    p = x + y
    return p * z


X = np.array([1.0, 2.0, 3.0])


def shared(w):
    return w * X[0] + w * X[1] + w * X[2]


def broadcast(w):
    return np.sum(w * X)


def softmax(z):
    # without the tutorial's max shift: its gradient is zero only up to rounding, and
    # rounding noise (1e-17) would make the picture differ between machines
    e = np.exp(z)
    return e / np.sum(e)


def loss(w1, w2, x, y):
    h = 1 / (1 + np.exp(-np.dot(x, w1)))  # sigmoid
    y_pred = h.dot(w2)
    return np.square(y_pred - y).sum()


def h(x):
    y = np.sin(x)
    return y * x


def steps(x, w):
    for _ in range(100):
        x = np.tanh(x * w) + x
    return np.sum(x)


NET = (np.array([[0.5, -0.5], [0.25, 1.0], [-1.0, 0.5]]),   # w1: 3 inputs -> 2 hidden
       np.array([[1.0], [-2.0]]),                           # w2: 2 hidden -> 1 output
       np.array([[1.0, 2.0, 0.0], [0.0, 1.0, -1.0]]),       # x: 2 samples
       np.array([[1.0], [0.0]]))                            # y

# name -> (the graph, the direction it is drawn in)
FIGURES: dict[str, tuple[Callable[[], dr.drawing.Graph], str]] = {
    "e_values.svg": (lambda: dr.graph(e, mode="values")(2.0, 1.0), "LR"),
    "e_backward.svg": (lambda: dr.graph(e)(2.0, 1.0), "LR"),
    "e_forward.svg": (lambda: dr.graph(e, mode="forward")(2.0, 1.0), "LR"),
    "g_backward.svg": (lambda: dr.graph(g)(1.0, 3.0, -3.0), "LR"),
    "shared_weights.svg": (lambda: dr.graph(shared)(0.5), "LR"),
    "broadcast_sum.svg": (lambda: dr.graph(broadcast)(0.5), "LR"),
    "softmax_jacobian.svg": (lambda: dr.graph(softmax)(np.array([1.0, 2.0, 0.5])), "TB"),
    "two_layer_net.svg": (lambda: dr.graph(loss, argnums=(0, 1))(*NET), "TB"),
    "grad_of_grad.svg": (lambda: dr.graph(dr.grad(h))(0.5), "LR"),
    "loop.svg": (lambda: dr.graph(steps)(np.array([0.5, -1.0]), 0.9), "LR"),
}


def render_all() -> dict[str, str]:
    """Every figure's SVG text, by file name."""
    return {name: make().to_svg(direction=direction)
            for name, (make, direction) in FIGURES.items()}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, text in render_all().items():
        path = HERE / name
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("stale figures (run python docs/figures/make_figures.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
