"""Labels as written (issue 26): in-place writes as ``u[1:-1] += ...``, operations whose
argument order matters with their arguments' names, and no label leaking internals
(addresses, solver results, holders) across a broad set of recorded functions — in the
SVG, DOT, text and program writers alike."""

from __future__ import annotations

import html
import warnings

import numpy as np
import pytest
import scipy.integrate as si
import scipy.optimize as so
import scipy.special as ss

import dualrev as dr
from dualrev.drawing.record import MAX_LABEL


def heat(u0):
    u = u0.copy()
    for _ in range(2):
        u[1:-1] += 0.1 * (u[2:] - 2 * u[1:-1] + u[:-2])
    u[0] = u[1] * 2
    u[..., None, 2] = 7.0
    u[-1] -= u[3]
    u[1:3] *= 2.0
    return np.sum(u ** 2)


U0 = np.linspace(0.0, 1.0, 6)


def ops(gr):
    return [n for n in gr.nodes if n.kind == "op"]


def outputs_of(gr):
    return [n for n in gr.nodes if n.kind in ("input", "value", "const")]


def every_writer(gr):
    """The SVG (unescaped), DOT and text of a graph."""
    return html.unescape(gr.to_svg()), gr.to_dot(), str(gr)


def test_in_place_writes_read_as_written_and_keep_their_derivatives():
    gr = dr.graph(heat)(U0)
    written = [n.written for n in ops(gr)]
    assert "u0[1:-1] += v8" in written
    assert "u0''[0] = v22" in written   # the second write after two loop steps
    assert any(w.endswith("[..., None, 2] = [7]") for w in written)
    assert any("[-1] -= " in w for w in written)
    assert any("[1:3] *= 2" in w for w in written)
    for out in every_writer(gr):
        assert "u0[1:-1] += v8" in out
        assert "set(" not in out and "idx=" not in out and "slice(" not in out
    assert "u0' = u0 after u0[1:-1] += v8" in str(gr)
    # the drawn derivative is dr.grad's, and each value's adjoint is the sum of what its
    # edges hand back (the fused writes' shares included)
    np.testing.assert_allclose(gr["u0"].grad, dr.grad(heat)(U0), rtol=1e-12)
    check_shares_sum(gr)
    # expanded, the read, the operation and the write are drawn one by one
    flat = gr.view(expand=True)
    assert any(n.written.startswith("u0[1:-1] = ") for n in ops(flat))
    assert len(ops(flat)) > len(ops(gr))
    np.testing.assert_allclose(flat["u0"].grad, gr["u0"].grad, rtol=1e-12)
    check_shares_sum(flat)
    # forward mode: the same picture, tangents
    fw = dr.graph(heat, mode="forward", seed=(np.ones(6),))(U0)
    assert "u0[1:-1] += v8" in [n.written for n in ops(fw)]
    _, t = dr.jvp(heat, (U0,), (np.ones(6),))
    np.testing.assert_allclose(fw.outputs[0].tangent, t, rtol=1e-12)


def test_a_masked_write_reads_as_written():
    def f(x):
        u = x * 1.0
        mask = u > 0.5
        u[mask] *= 3.0
        u[u < 0.3] += 1.0
        u[np.array([1, 1, 2])] = 2.0   # repeated positions: not a mask, drawn as a write
        return np.sum(u ** 2)

    x = np.linspace(0.0, 1.0, 6)
    gr = dr.graph(f)(x)
    written = [n.written for n in ops(gr)]
    assert "v1[mask] *= 3" in written
    assert "v1'[<bool[6]>] += 1" in written
    assert "v1''[[1, 2]] = f64[2]" in written
    np.testing.assert_allclose(gr["x"].grad, dr.grad(f)(x), rtol=1e-12)
    check_shares_sum(gr)
    flat = gr.view(expand=True)
    assert len(ops(flat)) == len(ops(gr)) + 2 * 4   # each masked write: 5 entries
    np.testing.assert_allclose(flat["x"].grad, gr["x"].grad, rtol=1e-12)


def check_shares_sum(gr):
    for node in outputs_of(gr):
        if node.grad is None or node.kind == "const":
            continue
        shares = [e.grad for e in gr.edges_from(node) if e.grad is not None]
        if shares and not node.output:
            np.testing.assert_allclose(sum(shares), node.grad, rtol=1e-12, atol=1e-14,
                                       err_msg=node.name)


def test_a_write_of_a_view_read_elsewhere_is_not_fused():
    def f(x):
        y = x * 1.0
        v = y[1:]
        w = v + 1.0   # v is read twice: no y[1:] += ... to show
        s = np.sum(v)
        y[1:] = w
        return np.sum(y) + s

    x = np.array([1.0, 2.0, 3.0])
    gr = dr.graph(f)(x)
    assert not any("+=" in n.written for n in ops(gr))
    assert any(n.written.endswith("[1:] = w") for n in ops(gr))
    np.testing.assert_allclose(gr["x"].grad, dr.grad(f)(x), rtol=1e-12)


ORDERED = {
    "subtract": (lambda a, b: a - b, "a - b", "b - a"),
    "divide": (lambda a, b: a / b, "a / b", "b / a"),
    "power": (lambda a, b: a ** b, "a ** b", "b ** a"),
    "arctan2": (lambda a, b: np.arctan2(a, b), "np.arctan2(a, b)", "np.arctan2(b, a)"),
}


@pytest.mark.parametrize("kind", sorted(ORDERED))
def test_ordered_operations_say_which_input_is_which(kind):
    op, one, other = ORDERED[kind]
    f = lambda a, b: op(a, b)           # noqa: E731
    swapped = lambda a, b: op(b, a)     # noqa: E731
    g1, g2 = dr.graph(f)(1.5, 2.5), dr.graph(swapped)(1.5, 2.5)
    for out1, out2 in zip(every_writer(g1), every_writer(g2), strict=True):
        assert one in out1 and other not in out1
        assert other in out2 and one not in out2
    # the edges enter the operation in argument order, each with its own share
    (node,) = ops(g1)
    into = sorted(g1.edges_into(node), key=lambda e: e.argpos)
    assert [g1.nodes[int(e.src[1:])].name for e in into] == ["a", "b"]
    want = dr.grad(f, argnums=(0, 1))(1.5, 2.5)
    assert np.allclose([e.grad for e in into], want)


def test_matmul_where_and_solve_name_their_arguments():
    def f(A, x, y):
        m = x > 0
        z = np.where(m, x, y)
        return np.sum(np.linalg.solve(A, z) + A @ x)

    A = np.array([[2.0, 1.0], [0.5, 3.0]])
    gr = dr.graph(f)(A, np.array([1.0, -2.0]), np.array([3.0, 4.0]))
    written = {n.written for n in ops(gr)}
    assert "A @ x" in written
    assert "np.where(bool[2], x, y)" in written
    assert any(w.startswith("solve(A, z)") or w.startswith("np.linalg.solve(A, z)")
               for w in written)
    # commutative operations keep their symbol alone
    assert any(n.name == "+" and not n.written for n in ops(gr))


@dr.custom_jvp
def cj(x):
    return np.sin(x)


cj.defjvp(lambda primals, tangents: (np.sin(primals[0]), np.cos(primals[0]) * tangents[0]))


@dr.custom_vjp
def cv(x):
    return np.sin(x)


cv.defvjp(lambda x: (np.sin(x), x), lambda res, g: (np.cos(res) * g,))


def _ode(k):
    sol = si.solve_ivp(lambda t, y: -k * y, (0, 10), np.array([1.0, 2.0]), rtol=1e-8)
    return sol.y[:, -1]


def _events(k):
    ev = lambda t, y: y[0] - 0.5     # noqa: E731
    sol = si.solve_ivp(lambda t, y: -k * y, (0, 10), np.array([1.0]), events=ev)
    return sol.t_events[0]


PROGRAMS = {
    "solve_ivp": (_ode, 0.5),
    "solve_ivp events": (_events, 0.5),
    "quad": (lambda k: si.quad(lambda x: np.sin(k * x), 0, 1)[0], 0.5),
    "odeint": (lambda k: si.odeint(lambda y, t: -k * y, np.array([1.0]),
                                   np.array([0.0, 1.0]))[-1], 0.5),
    "fsolve": (lambda k: so.fsolve(lambda x: x ** 3 - k, 1.0), 2.0),
    "root": (lambda k: so.root(lambda x: x ** 3 - k, np.array([1.0])).x, 2.0),
    "brentq": (lambda k: so.brentq(lambda x: x ** 3 - k, 0.0, 5.0), 2.0),
    "minimize": (lambda k: so.minimize(lambda x: np.sum((x - k) ** 2), np.zeros(2)).x, 2.0),
    "custom rules": (lambda x: cj(x) + cv(x), 0.3),
    "checkpoint": (lambda x: dr.checkpoint(lambda y: np.sin(y) * y)(x), 0.3),
    "checkpoint_loop": (lambda x: dr.checkpoint_loop(lambda y: np.sin(y) * 0.5, x, 10), 0.3),
    "special": (lambda x: ss.erf(x) + ss.gammaln(x) + ss.jv(1.5, x), 0.7),
    "heat": (heat, U0),
    "grad of grad": (dr.grad(dr.grad(lambda x: np.sin(x) * x)), 0.5),
    "hessian": (dr.hessian(lambda x: np.sum(x ** 3)), np.array([1.0, 2.0])),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_no_label_leaks_internals(name):
    f, x = PROGRAMS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gr = dr.graph(f)(x)
    for n in gr.nodes:
        if n.kind in ("op", "group"):
            for line in n.lines:
                assert len(line) <= MAX_LABEL, (n, line)
                assert "\n" not in line
    for out in every_writer(gr) + (gr.view(expand=True).to_dot(),):
        for bad in ("object at 0x", "holder=", "<function", "message:", "OdeResult",
                    "slice(", "Ellipsis"):
            assert bad not in out, (name, bad)
    # and the drawing's numbers are the transform's
    if name not in ("solve_ivp events",):
        want = dr.jacobian(f)(x)
        got = gr.inputs[0].grad
        np.testing.assert_allclose(np.reshape(got, np.shape(want)), want, rtol=1e-5,
                                   atol=1e-9)


def test_an_implicit_solution_is_named_after_the_solver():
    gr = dr.graph(lambda k: so.brentq(lambda x: x ** 3 - k, 0.0, 5.0))(2.0)
    assert any(n.name == "scipy.optimize.brentq" for n in ops(gr))
    ode = dr.graph(_ode)(0.5)
    (solve,) = [n for n in ops(ode) if n.name == "scipy.integrate.solve_ivp"]
    assert "method='RK45'" in solve.detail and "rtol" in solve.detail


def test_a_program_draws_its_writes_as_written():
    f = dr.replay(dr.grad(lambda x: np.sum(x[1:-1] ** 2)))
    x = np.array([1.0, 2.0, 3.0, 4.0])
    f(x)
    gr = dr.graph(f.programs[0])
    written = [n.written for n in ops(gr)]
    assert any(w.startswith("zeros((4,))[1:-1] += ") for w in written), written
    assert any(w.startswith("x[1:-1]") for w in written), written
    for out in every_writer(gr):
        assert "idx=" not in out and "slice(" not in out
    assert "x[1:-1]" in str(gr)


# ------------------------------------------------------------------ generated programs

_SLICES = [slice(1, -1), slice(None, 3), slice(2, None), slice(None, None, 2), 0, -1, 2,
           (Ellipsis, 1), np.array([True, False, True, True, False, True])]
_OPS = ["+=", "-=", "*=", "/=", "="]


def _random_program(seed: int):
    """A straight-line function of a 6-vector mixing elementwise operations, reads and
    in-place writes (``u[k] op= expr``), drawn and differentiated."""
    rng = np.random.default_rng(seed)
    steps = []
    for _ in range(int(rng.integers(3, 8))):
        idx = _SLICES[int(rng.integers(len(_SLICES)))]
        op = _OPS[int(rng.integers(len(_OPS)))]
        src = _SLICES[int(rng.integers(len(_SLICES)))]
        fn = ["sin", "tanh", "square", "scale"][int(rng.integers(4))]
        steps.append((idx, op, src, fn, float(rng.uniform(0.5, 1.5))))

    def f(x):
        u = x * 1.0
        for idx, op, src, fn, c in steps:
            r = u[src]
            r = (np.sin(r) if fn == "sin" else np.tanh(r) if fn == "tanh"
                 else r * r if fn == "square" else c * r)
            part = np.sum(r) * c if np.ndim(u[idx]) == 0 else r.mean() + c
            if op == "+=":
                u[idx] += part
            elif op == "-=":
                u[idx] -= part
            elif op == "*=":
                u[idx] *= part
            elif op == "/=":
                u[idx] /= 2.0 + part * part
            else:
                u[idx] = part
        return np.sum(np.sin(u) * x)

    return f


@pytest.mark.parametrize("seed", range(40))
def test_generated_programs_draw_dr_grads_numbers_with_shares_that_add_up(seed):
    f = _random_program(seed)
    x = np.random.default_rng(1000 + seed).uniform(-1.0, 1.0, 6)
    gr = dr.graph(f)(x)
    want = dr.grad(f)(x)
    np.testing.assert_allclose(gr["x"].grad, want, rtol=1e-10, atol=1e-12)
    check_shares_sum(gr)
    flat = gr.view(expand=True)
    np.testing.assert_allclose(flat["x"].grad, want, rtol=1e-10, atol=1e-12)
    check_shares_sum(flat)
    for n in ops(gr):
        assert all(len(line) <= MAX_LABEL for line in n.lines)
    fw = dr.graph(f, mode="forward", seed=(np.ones(6),))(x)
    np.testing.assert_allclose(fw.outputs[0].tangent, want @ np.ones(6), rtol=1e-10)


def test_index_arrays_are_named_as_in_the_users_code():
    def f(x, sel):
        mask = x > 0.5
        idx = np.array([0, 2])
        y = x[mask] * 2
        z = x[idx] - x[sel]
        big = np.arange(6)[::-1]
        return np.sum(y) + np.sum(z) + np.sum(x[big] * x)

    x = np.linspace(0.0, 1.0, 6)
    gr = dr.graph(f, argnums=0)(x, np.array([1, 3]))
    written = [n.written for n in ops(gr)]
    for want in ("x[mask]", "x[idx]", "x[sel]", "x[big]"):
        assert want in written, written
    for out in every_writer(gr):
        assert "x[mask]" in out and "<bool[6]>" not in out
    np.testing.assert_allclose(gr["x"].grad, dr.grad(f)(x, np.array([1, 3])), rtol=1e-12)
    # an index array nobody named is written by value or shape
    g2 = dr.graph(lambda x: np.sum(x[x > 0.5]) + np.sum(x[np.array([1, 2])]))(x)
    assert {"x[<bool[6]>]", "x[[1, 2]]"} <= {n.written for n in ops(g2)}
