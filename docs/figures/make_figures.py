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

def train(params):
    """The two-layer net trained by 20 gradient steps in a Python loop: drawn folded."""
    w1, w2 = params
    for _ in range(20):
        g1, g2 = dr.grad(loss, argnums=(0, 1))(w1, w2, NET[2], NET[3])
        w1, w2 = w1 - 0.1 * g1, w2 - 0.1 * g2
    return loss(w1, w2, NET[2], NET[3])


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
    "training_loop.svg": (lambda: dr.graph(train)((NET[0], NET[1])), "auto"),
}


def tiny(x, y):
    return np.sin(x) * y + x


def program_svg() -> str:
    """docs/design.md's picture of a tape as a program: the entries ``tiny`` records
    (their kind, primitive, what they keep) and their edges (argument position), with
    the directions of the two walkers. Read off a real recording, so it shows what the
    code does."""
    from dualrev.primitive import NotSaved, Shaped
    from dualrev.reverse import Tape
    from dualrev.tracer import new_level

    tape = Tape(new_level(), "grad")
    x, y = tape.input(0.5), tape.input(2.0)
    tiny(x, y)
    tape.finish()
    names = {0: "x", 1: "y"}

    def shown(v: object, j: int) -> str:
        if isinstance(v, NotSaved):
            return "·"
        if isinstance(v, Shaped):
            return "shape"
        return f"{v:.3g}" if isinstance(v, float) else type(v).__name__

    rows = []
    for i, entry in enumerate(tape.nodes):
        if entry.prim is None:
            rows.append((f"{i}  {entry.kind} {names[i]} = {entry.out:.3g}", ""))
            continue
        kept = ", ".join(shown(v, j) for j, v in enumerate(entry.kept))
        edges = ", ".join(f"({a}, {s})" for a, s, _, _ in entry.edges)
        rows.append((f"{i}  {entry.prim.name}", f"kept ({kept})  out {shown(entry.out, -1)}"
                     f"  edges {edges}"))
    w, h, gap, left = 360, 40, 22, 150
    height = 50 + len(rows) * (h + gap)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + w + 170}" '
           f'height="{height}" font-family="monospace" font-size="12">',
           '<defs><marker id="a" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>']
    top = [20 + i * (h + gap) for i in range(len(rows))]
    for i, (head, body) in enumerate(rows):
        fill = "#eef4ff" if tape.nodes[i].prim is None else "#fff8e6"
        out.append(f'<rect x="{left}" y="{top[i]}" width="{w}" height="{h}" rx="5" '
                   f'fill="{fill}" stroke="#555"/>')
        out.append(f'<text x="{left + 8}" y="{top[i] + 16}" font-weight="bold">{head}</text>')
        out.append(f'<text x="{left + 8}" y="{top[i] + 32}">{body}</text>')
    for i, entry in enumerate(tape.nodes):
        for a, s, _, _ in entry.edges:
            y0, y1 = top[s] + h / 2, top[i] + h / 2
            bend = left - 30 - 22 * (i - s)
            out.append(f'<path d="M{left},{y0} C{bend},{y0} {bend},{y1} {left},{y1}" '
                       'fill="none" stroke="#336" marker-end="url(#a)"/>')
            out.append(f'<text x="{left - 40}" y="{y1 - 6 + 12 * a}" font-size="10" '
                       f'fill="#336">arg {a}</text>')
    xr = left + w + 30
    out.append(f'<path d="M{xr},{top[0]} L{xr},{top[-1] + h}" stroke="#070" '
               'marker-end="url(#a)"/>')
    out.append(f'<text x="{xr + 8}" y="{top[0] + 14}" fill="#070">forward_pass</text>')
    out.append(f'<path d="M{xr + 100},{top[-1] + h} L{xr + 100},{top[0]}" stroke="#a00" '
               'marker-end="url(#a)"/>')
    out.append(f'<text x="{xr + 8}" y="{top[-1] + h}" fill="#a00">backward_pass</text>')
    out.append(f'<text x="10" y="{height - 24}" font-size="11">edges: (argument position, '
               'source entry); each also holds the shape and cotangent kind.</text>')
    out.append(f'<text x="10" y="{height - 10}" font-size="11">\u00b7: not kept (the '
               "primitive's saves= declaration)</text>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


# name -> a function giving the SVG text (pictures that are not graphs)
TEXT_FIGURES: dict[str, Callable[[], str]] = {"tape_program.svg": program_svg}


def render_all() -> dict[str, str]:
    """Every figure's SVG text, by file name."""
    out = {name: make().to_svg(direction=direction)
           for name, (make, direction) in FIGURES.items()}
    out.update({name: make() for name, make in TEXT_FIGURES.items()})
    return out


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
