"""The docs' figures. ``python docs/figures/make_figures.py`` rewrites the SVGs beside
this file: the tutorial's graphs drawn by dualrev.graph and the pictures generated from
the source (the tape as a program, the layer diagram read from tests/test_layers.py's
LAYERS, a sparsity pattern with its colouring); ``--check`` only compares (exit status 1
if any is stale). tests/test_drawing.py runs the comparison, so the committed pictures
always show what the code draws. ``--png`` also remakes the pictures of a run
(``PNG_FIGURES``: a convergence trace), with matplotlib; those are committed as made and
only checked to exist and be referenced.

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


# ------------------------------------------------ pictures generated from the source

ROOT = HERE.parent.parent


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def layer_table() -> list[list[str]]:
    """tests/test_layers.py's LAYERS (bottom to top), read with ``ast`` (no import of the
    tests): the one table the layer test checks the imports against."""
    import ast

    tree = ast.parse((ROOT / "tests" / "test_layers.py").read_text(encoding="utf-8"))
    for node in tree.body:
        target = getattr(node, "target", None) or (getattr(node, "targets", None) or [None])[0]
        if isinstance(target, ast.Name) and target.id == "LAYERS" and node.value is not None:
            return [sorted(layer) for layer in ast.literal_eval(node.value)]
    raise LookupError("tests/test_layers.py has no LAYERS table")


def _wrap(names: list[str], width: int) -> list[str]:
    """The names joined by commas into lines of at most ``width`` characters."""
    lines: list[str] = []
    for name in names:
        if lines and len(lines[-1]) + 2 + len(name) <= width:
            lines[-1] += ", " + name
        else:
            lines.append(name)
    return [line + ("," if i < len(lines) - 1 else "") for i, line in enumerate(lines)]


def layers_svg() -> str:
    """docs/design.md's layer diagram: one box per layer of tests/test_layers.py's LAYERS,
    its modules (``dualrev.`` left out; ``x.*`` a package and everything under it), and an
    arrow from each layer to the one below, the direction imports may go. Placed by
    dualrev's own ``layered_layout`` (top to bottom), so a change to LAYERS shows here
    once the figure is made again (tests/test_drawing.py compares)."""
    layers = layer_table()
    char, line_h, pad, width = 7.2, 16, 10, 66
    texts = []
    for k, modules in enumerate(layers):
        names = [m.removeprefix("dualrev.") if m != "dualrev" else "dualrev (__init__)"
                 for m in modules]
        texts.append((f"layer {k}", _wrap(names, width)))
    top = len(layers) - 1  # drawn from the top layer down: node i is layer top - i
    sizes = []
    for i in range(len(layers)):
        _, lines = texts[top - i]
        w = max(len(line) for line in lines) * char + 2 * pad + 70
        sizes.append((round(max(w, 160.0)), (len(lines) + 1) * line_h + 2 * pad - 4))
    lay = dr.drawing.layered_layout(sizes, [(i, i + 1) for i in range(top)], direction="TB")
    margin, legend = 20, 58
    w_total = max(round(lay.width) + 2 * margin, 640)
    h_total = round(lay.height) + 2 * margin + legend
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w_total}" height="{h_total}" '
           'font-family="monospace" font-size="12">',
           '<defs><marker id="a" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>']
    fills = ["#eef4ff", "#f3f0ff", "#eefaf0", "#fff8e6", "#fdeeee", "#eef8fa", "#f5f5f5"]
    for i, (x, y, w, h) in enumerate(lay.boxes):
        k = top - i
        title, lines = texts[k]
        x0, y0 = round(x) + margin, round(y) + margin
        out.append(f'<rect x="{x0}" y="{y0}" width="{round(w)}" height="{round(h)}" rx="6" '
                   f'fill="{fills[k % len(fills)]}" stroke="#555"/>')
        out.append(f'<text x="{x0 + pad}" y="{y0 + pad + 11}" font-weight="bold">'
                   f"{title}</text>")
        for j, line in enumerate(lines):
            out.append(f'<text x="{x0 + pad + 70}" y="{y0 + pad + 11 + j * line_h}">'
                       f"{_escape(line)}</text>")
    for pts in lay.paths:
        d = " L".join(f"{round(px) + margin},{round(py) + margin}" for px, py in pts)
        out.append(f'<path d="M{d}" fill="none" stroke="#336" marker-end="url(#a)"/>')
        (x1, y1), (_, y2) = pts[0], pts[-1]
        out.append(f'<text x="{round(x1) + margin + 8}" y="{round((y1 + y2) / 2) + margin + 4}"'
                   ' fill="#336" font-size="11">may import from</text>')
    base = round(lay.height) + 2 * margin
    legend_lines = [
        "A module imports only from its own layer or below (the arrows: the allowed",
        "direction, transitively), never inside a function; no module writes into another's",
        "tables. Drawn from tests/test_layers.py's LAYERS, the table that test checks against."]
    for j, line in enumerate(legend_lines):
        out.append(f'<text x="{margin}" y="{base + 14 + 16 * j}" font-size="11">'
                   f"{_escape(line)}</text>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def stencil(u):
    """docs/users.md's sparse example, a 1-d Bratu-like stencil (three points a row)."""
    return u[:-2] - 2 * u[1:-1] + u[2:] + 0.1 * np.exp(u[1:-1])


def sparsity_svg(n: int = 14) -> str:
    """docs/users.md's sparsity picture: the Jacobian pattern ``dr.sparse.jacobian`` finds
    for ``stencil`` at n unknowns, each entry in its column's colour, and beside it the
    compressed Jacobian the colouring computes (one column per colour: one forward pass of
    three tangents), each entry where its column's colour puts it."""
    J = dr.sparse.jacobian(stencil)
    A = J(np.zeros(n)).tocoo()
    colours, k = [int(c) for c in J.colours], J.n_colours
    palette = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
    cell, gap, left, top = 16, 80, 30, 44
    m = A.shape[0]
    width = max(left + n * cell + gap + k * cell + 30, 520)
    height = top + m * cell + 90
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           'font-family="sans-serif" font-size="12">',
           f'<text x="{left}" y="20">Jacobian pattern ({m} x {n}), columns coloured</text>',
           f'<text x="{left + n * cell + gap}" y="20">compressed ({m} x {k})</text>']

    def grid(x0: int, cols: int) -> None:
        out.append(f'<rect x="{x0}" y="{top}" width="{cols * cell}" height="{m * cell}" '
                   'fill="#fafafa" stroke="#999"/>')

    grid(left, n)
    grid(left + n * cell + gap, k)
    for j in range(n):  # the colour of each column, above it
        out.append(f'<rect x="{left + j * cell + 3}" y="{top - 12}" width="{cell - 6}" '
                   f'height="6" fill="{palette[colours[j] % len(palette)]}"/>')
    for i, j in sorted(zip(A.row.tolist(), A.col.tolist(), strict=True)):
        fill = palette[colours[j] % len(palette)]
        out.append(f'<rect x="{left + j * cell + 1}" y="{top + i * cell + 1}" '
                   f'width="{cell - 2}" height="{cell - 2}" fill="{fill}"/>')
        out.append(f'<rect x="{left + n * cell + gap + colours[j] * cell + 1}" '
                   f'y="{top + i * cell + 1}" width="{cell - 2}" height="{cell - 2}" '
                   f'fill="{fill}"/>')
    mid = top + m * cell // 2
    out.append(f'<text x="{left + n * cell + 12}" y="{mid - 6}">J @ seeds</text>')
    out.append(f'<path d="M{left + n * cell + 10},{mid} L{left + n * cell + gap - 10},{mid}" '
               'stroke="#333" marker-end="url(#a)"/>')
    out.insert(1, '<defs><marker id="a" viewBox="0 0 10 10" refX="9" refY="5" '
               'markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z"/>'
               "</marker></defs>")
    caption = [f"{k} colours: columns of one colour share no row, so one tangent (the sum",
               "of their unit vectors) probes them together. Each entry of the compressed",
               "matrix is one entry of J, put back by its row and its column's colour",
               f"(mode={J.mode!r}, {J.passes} pass of {k} tangents, whatever n)."]
    for j, line in enumerate(caption):
        out.append(f'<text x="{left}" y="{top + m * cell + 24 + 16 * j}">{_escape(line)}'
                   "</text>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ------------------------------------------------ pictures of a run (matplotlib, --png)


def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def convergence_runs(n: int = 100) -> dict[str, tuple[list[int], list[float], bool]]:
    """BFGS on Rosenbrock in n dimensions from 0.5: dualrev's exact gradient against
    SciPy's finite differences ('2-point', its default, and '3-point'). Per run, after
    each iteration: the calls of the objective so far (a finite-difference probe, or one
    value-and-gradient pass of dualrev's, ``replay=False`` so that each runs the Python
    function) and the exact gradient norm at the iterate; and the run's ``success``."""
    import scipy.optimize as so

    exact = dr.grad(rosen)
    runs = {}
    for label in ("dualrev (exact gradient)", "finite differences, '2-point' (SciPy's default)",
                  "finite differences, '3-point'"):
        calls = [0]

        def f(x, calls=calls):
            calls[0] += 1
            return rosen(x)

        trace_calls, trace_norm = [0], [float(np.linalg.norm(exact(np.full(n, 0.5))))]

        def note(xk, calls=calls, trace_calls=trace_calls, trace_norm=trace_norm):
            trace_calls.append(calls[0])
            trace_norm.append(float(np.linalg.norm(exact(xk))))

        x0 = np.full(n, 0.5)
        if label.startswith("dualrev"):
            res = dr.optimize.minimize(f, x0, method="BFGS", callback=note, replay=False)
        else:
            jac = "3-point" if "3-point" in label else "2-point"
            res = so.minimize(f, x0, method="BFGS", jac=jac, callback=note)
        runs[label] = (trace_calls, trace_norm, bool(res.success))
    return runs


def convergence_png(path: Path) -> None:
    """docs/users.md's convergence trace: the gradient norm against iterations and
    against calls of the objective, log scale, for ``convergence_runs``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = convergence_runs()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for (label, (calls, norms, success)), style in zip(runs.items(), ("-", "--", ":"),
                                                        strict=True):
        shown = f"{label}: success={success}"
        ax1.semilogy(range(len(norms)), norms, style, label=shown)
        ax2.loglog(np.maximum(calls, 1), norms, style, label=shown)
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("|grad f(x_k)| (exact)")
    ax2.set_xlabel("calls of the objective (probes, or value-and-gradient passes)")
    ax1.axhline(1e-5, color="grey", lw=0.8)
    ax2.axhline(1e-5, color="grey", lw=0.8)
    ax1.text(2, 1.4e-5, "gtol = 1e-5", color="grey", fontsize=8)
    ax2.legend(fontsize=8, loc="lower left")
    fig.suptitle("scipy.optimize.minimize(method='BFGS') on Rosenbrock, n = 100", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


#: pictures of a run, made with matplotlib by ``--png`` (not compared by the tests: the
#: numbers of a run differ in their last digits between machines)
PNG_FIGURES: dict[str, Callable[[Path], None]] = {
    "convergence_rosenbrock.png": convergence_png}


# name -> a function giving the SVG text (pictures that are not graphs)
TEXT_FIGURES: dict[str, Callable[[], str]] = {"tape_program.svg": program_svg,
                                              "layers.svg": layers_svg,
                                              "sparsity_colouring.svg": sparsity_svg}
#: the doc showing each figure, where it is not the tutorial (graphs) or design.md (the
#: other generated pictures)
SHOWN_IN: dict[str, str] = {"sparsity_colouring.svg": "users.md",
                            "convergence_rosenbrock.png": "users.md"}


def render_all() -> dict[str, str]:
    """Every figure's SVG text, by file name."""
    out = {name: make().to_svg(direction=direction)
           for name, (make, direction) in FIGURES.items()}
    out.update({name: make() for name, make in TEXT_FIGURES.items()})
    return out


def main(argv: list[str]) -> int:
    check = "--check" in argv
    if "--png" in argv and not check:
        for name, make in PNG_FIGURES.items():
            make(HERE / name)
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
