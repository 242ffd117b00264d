"""Batching (dualrev/batching.py) and dualrev.vmap: axis specifications, nesting with
every transform, refusals, and the batching rules of the common primitives, each against
a Python loop of single calls."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import dualrev as dr
from dualrev import batching
from dualrev.batching import Batched, BatchTrace, rebatch, without_derivatives
from dualrev.errors import BatchedValueError, DualrevError, EscapedTracerError
from dualrev.tracer import new_level

RNG = np.random.default_rng(20261203)


def rand(*shape):
    return RNG.standard_normal(shape)


def loop(f, *xs, axis=0):
    """f over axis ``axis`` of every argument by a Python loop, stacked on axis 0."""
    n = np.shape(xs[0])[axis]
    return np.stack([np.asarray(f(*[np.take(x, i, axis=axis) for x in xs])) for i in range(n)])


def close(got, want, tol=1e-12):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.fixture
def no_loop(monkeypatch):
    """The batching rule under test must do the work: the loop fallback is forbidden."""
    def refuse(prim, *args, **kwargs):
        raise AssertionError(f"{prim.name} was batched by the loop fallback")
    monkeypatch.setattr(batching, "batch_by_loop", refuse)


def f_sin_sum(x):
    return np.sum(np.sin(x) * x)


# ------------------------------------------------------------------ in_axes, out_axes
def test_in_axes_int_maps_that_axis():
    x = rand(3, 4, 2)
    close(dr.vmap(lambda v: np.cumsum(v) * 2.0, in_axes=1)(x),
          loop(lambda v: np.cumsum(v) * 2.0, x, axis=1))
    close(dr.vmap(np.sum, in_axes=-1)(x), loop(np.sum, x, axis=2))


def test_in_axes_none_keeps_an_argument_whole():
    xs, w = rand(5, 3), rand(3, 2)
    got = dr.vmap(lambda x, w: x @ w, in_axes=(0, None))(xs, w)
    close(got, np.stack([x @ w for x in xs]))


def test_in_axes_tuple_per_argument():
    a, b = rand(4, 3), rand(3, 4)  # a mapped over rows, b over columns
    got = dr.vmap(lambda u, v: u * v + np.sum(u), in_axes=(0, 1))(a, b)
    close(got, np.stack([a[i] * b[:, i] + np.sum(a[i]) for i in range(4)]))


def test_in_axes_nested_dict_prefix():
    params = {"w": rand(3, 2), "b": rand(5, 2)}  # w shared, b per element
    xs = rand(5, 3)

    def model(p, x):
        return np.tanh(x @ p["w"] + p["b"])

    got = dr.vmap(model, in_axes=({"w": None, "b": 0}, 0))(params, xs)
    close(got, np.stack([model({"w": params["w"], "b": params["b"][i]}, xs[i])
                         for i in range(5)]))
    # an int for a whole subtree maps every leaf in it
    both = {"w": rand(5, 3, 2), "b": rand(5, 2)}
    got = dr.vmap(model, in_axes=(0, 0))(both, xs)
    close(got, np.stack([model({"w": both["w"][i], "b": both["b"][i]}, xs[i])
                         for i in range(5)]))
    with pytest.raises(DualrevError, match="does not match the structure"):
        dr.vmap(model, in_axes=({"w": None}, 0))(params, xs)


def test_out_axes_positive_negative_and_none():
    x = rand(4, 3)
    want = loop(lambda v: np.outer(v, v[:2]), x)  # (4, 3, 2)
    close(dr.vmap(lambda v: np.outer(v, v[:2]), out_axes=1)(x), np.moveaxis(want, 0, 1))
    close(dr.vmap(lambda v: np.outer(v, v[:2]), out_axes=-1)(x), np.moveaxis(want, 0, -1))
    # None: an output the same for every element comes back once, unbatched
    c = rand(3)
    y, k = dr.vmap(lambda v: (np.sum(v), c * 2.0), out_axes=(0, None))(x)
    close(y, x.sum(axis=1))
    close(k, c * 2.0)
    with pytest.raises(DualrevError, match="out_axes=None"):
        dr.vmap(lambda v: v * 2.0, out_axes=None)(x)
    with pytest.raises(DualrevError, match="out of range"):
        dr.vmap(lambda v: v * 2.0, out_axes=3)(x)


def test_unbatched_outputs_are_broadcast_and_writable():
    out = dr.vmap(lambda v: np.ones(2), in_axes=0)(rand(3, 4))
    close(out, np.ones((3, 2)))
    out[0, 0] = 5.0  # a fresh array, not a read-only broadcast view


def test_axis_size_when_no_argument_is_mapped():
    c = rand(3)
    close(dr.vmap(lambda v: np.sin(v), in_axes=None, axis_size=4)(c),
          np.broadcast_to(np.sin(c), (4, 3)))
    with pytest.raises(DualrevError, match="axis_size"):
        dr.vmap(lambda v: v, in_axes=None)(c)
    with pytest.raises(DualrevError, match="different sizes"):
        dr.vmap(lambda v: v, axis_size=5)(rand(4, 2))
    with pytest.raises(DualrevError, match="different sizes"):
        dr.vmap(lambda u, v: u + v)(rand(4), rand(3))


def test_an_empty_batch_gives_empty_results():
    empty = np.zeros((0, 3))
    close(dr.vmap(lambda v: np.sin(v) @ np.ones((3, 2)))(empty), np.zeros((0, 2)))
    close(dr.vmap(np.argmax)(empty), np.zeros(0, dtype=np.int64))  # a plain function
    close(dr.vmap(np.sort)(empty), empty)
    close(dr.vmap(dr.grad(lambda v: np.sum(v ** 2)))(empty), empty)


def test_keyword_arguments_are_mapped_over_axis_0():
    xs, scales = rand(4, 3), rand(4)

    def f(x, scale=1.0):
        return np.exp(x) * scale

    got = dr.vmap(f)(xs, scale=scales)
    close(got, np.stack([f(xs[i], scale=scales[i]) for i in range(4)]))


# ------------------------------------------------------------------ nesting
def test_vmap_of_vmap():
    x, y = rand(3, 4, 2), rand(4, 2)

    def f(u, v):
        return np.sum(u * v) + np.prod(u)

    got = dr.vmap(dr.vmap(f, in_axes=(0, 0)), in_axes=(0, None))(x, y)
    close(got, np.array([[f(x[i, j], y[j]) for j in range(4)] for i in range(3)]))
    # the inner map over an axis the outer map does not touch
    got = dr.vmap(dr.vmap(f, in_axes=(1, None)), in_axes=(0, None))(x, y[:, 0])
    close(got, np.array([[f(x[i, :, j], y[:, 0]) for j in range(2)] for i in range(3)]))


def test_vmap_of_grad_and_grad_of_vmap():
    x = rand(5, 3)
    close(dr.vmap(dr.grad(f_sin_sum))(x), np.stack([dr.grad(f_sin_sum)(v) for v in x]))
    # d/dx sum_i f(x_i) is the per-row gradient
    total = dr.grad(lambda xs: np.sum(dr.vmap(f_sin_sum)(xs)))(x)
    close(total, np.sin(x) + x * np.cos(x))


def test_jacfwd_of_vmap_is_block_diagonal():
    x = rand(4, 3)
    jac = dr.jacfwd(dr.vmap(lambda v: np.tanh(v) * np.sum(v)))(x)  # (4, 3, 4, 3)
    per = [dr.jacfwd(lambda v: np.tanh(v) * np.sum(v))(v) for v in x]
    for i in range(4):
        for j in range(4):
            close(jac[i, :, j, :], per[i] if i == j else np.zeros((3, 3)))


def test_vmap_of_jacrev_and_of_hessian():
    x = rand(4, 3)

    def f(v):
        return np.stack([np.sum(v ** 3), np.prod(np.cos(v))])

    close(dr.vmap(dr.jacrev(f))(x), np.stack([dr.jacrev(f)(v) for v in x]))
    g = lambda v: np.sum(np.exp(v) * v[::-1])  # noqa: E731
    close(dr.vmap(dr.hessian(g))(x), np.stack([dr.hessian(g)(v) for v in x]))
    # and the closed form: diag(e^v v[::-1]) + A + A^T with A[i, n-1-i] = e^(v_i)
    for v, h in zip(x, dr.vmap(dr.hessian(g))(x), strict=True):
        a = np.zeros((3, 3))
        a[np.arange(3), np.arange(3)[::-1]] = np.exp(v)
        close(h, np.diag(np.exp(v) * v[::-1]) + a + a.T)
    close(dr.hessian(lambda xs: np.sum(dr.vmap(g)(xs)))(x[0:1]).reshape(3, 3),
          dr.hessian(g)(x[0]))


def test_vmap_of_jvp_and_vjp_with_batched_tangents():
    x, t = rand(4, 3), rand(4, 3)
    f = lambda v: np.sin(v) * np.sum(v)  # noqa: E731
    primal, tangent = dr.vmap(lambda v, u: dr.jvp(f, (v,), (u,)))(x, t)
    close(primal, loop(f, x))
    close(tangent, np.stack([dr.jvp(f, (x[i],), (t[i],))[1] for i in range(4)]))
    cts = dr.vmap(lambda v, u: dr.vjp(f, v)[1](u)[0])(x, t)
    close(cts, np.stack([dr.vjp(f, x[i])[1](t[i])[0] for i in range(4)]))


# ------------------------------------------------------------------ refusals
def test_escaped_batched_tracer_raises():
    kept = []

    def f(v):
        kept.append(v * 2.0)
        return np.sum(v)

    dr.vmap(f)(rand(3, 2))
    assert type(kept[0]) is Batched
    with pytest.raises(EscapedTracerError, match="vmap"):
        np.sin(kept[0])
    with pytest.raises(EscapedTracerError):
        dr.vmap(lambda v: v + kept[0])(rand(3, 2))


def test_if_on_a_batched_value_says_what_to_do():
    def f(v):
        if np.sum(v) > 0:
            return v
        return -v

    with pytest.raises(BatchedValueError) as err:
        dr.vmap(f)(rand(3, 2))
    msg = str(err.value)
    assert "`if`" in msg and "np.where" in msg and "in_axes=None" in msg
    assert isinstance(err.value, DualrevError)  # a clear refusal
    # the np.where form the message asks for works
    got = dr.vmap(lambda v: np.where(np.sum(v) > 0, v, -v))(x := rand(3, 2))
    close(got, np.stack([v if v.sum() > 0 else -v for v in x]))


def test_values_whose_size_depends_on_the_batch_refuse():
    with pytest.raises(BatchedValueError, match="nonzero"):
        dr.vmap(lambda v: np.nonzero(v > 0))(rand(3, 4))
    with pytest.raises(BatchedValueError, match="mask"):
        dr.vmap(lambda v: np.sum(v[v > 0]))(rand(3, 4))


# ------------------------------------------------------------------ plain values
def test_without_derivatives_keeps_the_batch_and_drops_the_tape():
    x = rand(3, 2)
    seen = []

    def f(v):
        w = without_derivatives(v)
        seen.append((type(v).__name__, type(w).__name__, type(w.primal).__name__))
        return np.sum(v * w)  # w is a constant: the gradient is w, not 2 v

    close(dr.vmap(dr.grad(f))(x), x)
    assert seen == [("Traced", "Batched", "ndarray")]
    # jvp outside, vmap inside: the dual number under the batch is dropped too
    trace = BatchTrace(new_level(), 3)
    try:
        out = dr.jvp(lambda v: without_derivatives(Batched(v, trace)).primal * 1.0, (x,),
                     (x,))
    finally:
        trace.finish()  # (a trace made by hand is finished by hand, as a transform does)
    close(out[1], np.zeros_like(x))


def test_stop_gradient_under_vmap_is_a_constant_per_element():
    x = rand(3, 2)
    f = lambda v: np.sum(dr.stop_gradient(v) * v)  # noqa: E731
    close(dr.vmap(f)(x), np.sum(x * x, axis=1))
    close(dr.vmap(dr.grad(f))(x), x)  # not 2 x
    close(dr.grad(lambda xs: np.sum(dr.vmap(f)(xs)))(x), x)
    _, t = dr.jvp(dr.vmap(lambda v: dr.stop_gradient(v) * 3.0), (x,), (np.ones_like(x),))
    close(t, np.zeros_like(x))


def test_rebatch_maps_a_whole_batch_result_back():
    x = rand(3, 4, 2)

    def f(v):
        whole = dr.primitive.concrete(v)
        assert whole.shape == (3, 4, 2)  # both batch axes in front, the outer map's first
        norm = rebatch(np.linalg.norm(whole, axis=-1), v)
        assert norm.shape == ()  # one element's
        return norm * v

    close(dr.vmap(dr.vmap(f))(x), np.linalg.norm(x, axis=-1)[..., None] * x)
    close(dr.vmap(dr.vmap(f, in_axes=1))(x.transpose(0, 2, 1)),
          np.linalg.norm(x, axis=-1)[..., None] * x)


def test_plain_functions_map_under_a_tape():
    # once a RecursionError: argmax (a plain function) of a batch under grad
    x = rand(4, 3)
    f = lambda v: np.sum(v ** 2) * np.argmax(v)  # noqa: E731
    close(dr.vmap(dr.grad(f))(x), np.stack([dr.grad(f)(v) for v in x]))
    close(dr.grad(lambda xs: np.sum(dr.vmap(f)(xs)))(x),
          np.stack([dr.grad(f)(v) for v in x]))


def test_boolean_operators_on_batched_masks():
    x = rand(4, 5)
    got = dr.vmap(lambda v: (~(v > 0) & (v > -1)) | (v > 1.5) ^ (v < -2))(x)
    close(got, (~(x > 0) & (x > -1)) | (x > 1.5) ^ (x < -2))
    close(dr.vmap(lambda v: np.nanmean(np.where(v > 0, v, np.nan)))(x),
          np.nanmean(np.where(x > 0, x, np.nan), axis=1))


# ------------------------------------------------------------------ batching rules
MATMUL = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)), ((2, 3), (3, 4)),
          ((2, 2, 3), (3, 4)), ((3,), (2, 3, 4)), ((2, 2, 3), (2, 3, 4)), ((1, 2, 3), (4, 3, 2))]


@pytest.mark.parametrize(("sa", "sb"), MATMUL)
@pytest.mark.parametrize("which", ["a", "b", "both"])
def test_matmul_rule(no_loop, sa, sb, which):
    n = 3
    a = rand(n, *sa) if which != "b" else rand(*sa)
    b = rand(n, *sb) if which != "a" else rand(*sb)
    axes = (0 if which != "b" else None, 0 if which != "a" else None)
    got = dr.vmap(np.matmul, in_axes=axes)(a, b)
    want = np.stack([(a[i] if axes[0] == 0 else a) @ (b[i] if axes[1] == 0 else b)
                     for i in range(n)])
    close(got, want)
    # and the derivative of a batched product, which meets the rule with batched tangents
    ct = dr.vmap(lambda u, v: dr.grad(lambda p, q: np.sum(np.sin(p @ q)), (0, 1))(u, v),
                 in_axes=axes)(a, b)
    for k in range(2):
        ref = np.stack([dr.grad(lambda p, q: np.sum(np.sin(p @ q)), (0, 1))(
            a[i] if axes[0] == 0 else a, b[i] if axes[1] == 0 else b)[k] for i in range(n)])
        close(ct[k], ref)


def test_matmul_unbatched_stack_against_batched_matrix(no_loop):
    stack, ms = rand(2, 3, 4), rand(5, 4, 2)  # a shared stack times each element's matrix
    close(dr.vmap(lambda m: stack @ m)(ms), np.stack([stack @ m for m in ms]))
    close(dr.vmap(lambda m: m.T @ stack.transpose(0, 2, 1))(ms),
          np.stack([m.T @ stack.transpose(0, 2, 1) for m in ms]))


@pytest.mark.parametrize(("spec", "shapes", "mapped"), [
    ("ij,jk->ik", ((2, 3), (3, 4)), (0, None)),
    ("ij,jk->ik", ((2, 3), (3, 4)), (None, 0)),
    ("ij,jk->ik", ((2, 3), (3, 4)), (0, 0)),
    ("ii->i", ((3, 3),), (0,)),
    ("i,i->", ((3,), (3,)), (0, None)),
    ("...ij,...jk->...ik", ((2, 2, 3), (3, 2)), (0, 0)),
    ("ij,jk,kl->il", ((2, 3), (3, 2), (2, 2)), (0, None, 0)),
])
def test_einsum_rule(no_loop, spec, shapes, mapped):
    n = 4
    ops = [rand(n, *s) if m == 0 else rand(*s) for s, m in zip(shapes, mapped, strict=True)]
    got = dr.vmap(lambda *o: np.einsum(spec, *o), in_axes=mapped)(*ops)
    want = np.stack([np.einsum(spec, *[o[i] if m == 0 else o for o, m in
                                       zip(ops, mapped, strict=True)]) for i in range(n)])
    close(got, want)


@pytest.mark.parametrize(("sa", "sb", "mapped"), [
    ((2, 3, 3), (3,), (None, 0)),      # a shared stack, each element its own vector
    ((2, 3, 3), (2, 3, 2), (None, 0)),
    ((3, 3), (2, 3, 2), (0, None)),
    ((2, 3, 3), (3, 2), (0, 0)),
    ((3, 3), (3,), (0, 0)),
])
def test_solve_rule_with_stacked_a_and_batched_b(no_loop, sa, sb, mapped):
    n = 4
    a = rand(*((n,) if mapped[0] == 0 else ()), *sa) + 3 * np.eye(sa[-1])
    b = rand(*((n,) if mapped[1] == 0 else ()), *sb)
    got = dr.vmap(np.linalg.solve, in_axes=mapped)(a, b)
    want = np.stack([np.linalg.solve(a[i] if mapped[0] == 0 else a, b[i] if mapped[1] == 0
                                     else b) for i in range(n)])
    close(got, want, 1e-10)
    # its derivative in both arguments, under vmap
    g = dr.vmap(dr.grad(lambda p, q: np.sum(np.linalg.solve(p, q) ** 2), (0, 1)),
                in_axes=mapped)(a, b)
    for k in range(2):
        ref = np.stack([dr.grad(lambda p, q: np.sum(np.linalg.solve(p, q) ** 2), (0, 1))(
            a[i] if mapped[0] == 0 else a, b[i] if mapped[1] == 0 else b)[k]
            for i in range(n)])
        close(g[k] if mapped[k] == 0 else g[k], ref, 1e-10)


@pytest.mark.parametrize("index", [
    np.array([0, 2, 2, 1]),                       # repeated: the cotangents accumulate
    (slice(None), np.array([[1, 0], [2, 2]])),
    (np.array([0, 1]), np.array([2, 0])),
    (Ellipsis, np.array([1, 1, 0])),
    np.array([[True, False, True], [False, True, True], [True, True, False]]),
])
def test_gather_and_scatter_rules_with_fancy_indices(no_loop, index):
    xs = rand(4, 3, 3)
    close(dr.vmap(lambda v: v[index])(xs), np.stack([v[index] for v in xs]))
    # gather's VJP is a scatter-add: under vmap with a batch of cotangents
    out_shape = np.shape(xs[0][index])
    us = rand(4, *out_shape)
    got = dr.vmap(lambda v, u: dr.vjp(lambda w: w[index], v)[1](u)[0])(xs, us)
    want = np.zeros_like(xs)
    for i in range(4):
        np.add.at(want[i], index if isinstance(index, tuple) else (index,), us[i])
    close(got, want)
    # and a scatter under vmap: dualrev.at(...).add
    got = dr.vmap(lambda v, u: dr.at(v)[index].add(u))(xs, us)
    want = xs.copy()
    for i in range(4):
        np.add.at(want[i], index if isinstance(index, tuple) else (index,), us[i])
    close(got, want)


def test_batched_indices_gather_per_element(no_loop):
    xs = rand(5, 4)
    pick = lambda v: v[np.argmax(v)] * v[np.argsort(v)[:2]]  # noqa: E731
    close(dr.vmap(pick)(xs), np.stack([pick(v) for v in xs]))
    close(dr.vmap(np.sort)(xs), np.sort(xs, axis=1))
    # the derivative flows through the per-element order, forward and reverse
    g = dr.vmap(dr.grad(lambda v: np.sum(np.sort(v) * np.arange(4.0))))(xs)
    close(g, np.stack([np.arange(4.0)[np.argsort(np.argsort(v))] for v in xs]))
    ts = rand(5, 4)
    _, tan = dr.vmap(lambda v, t: dr.jvp(np.sort, (v,), (t,)))(xs, ts)
    close(tan, np.stack([t[np.argsort(v)] for v, t in zip(xs, ts, strict=True)]))
    # a batch under the tape (grad outside, vmap inside)
    gv = dr.grad(lambda x: np.sum(dr.vmap(pick)(x)))(xs)
    close(gv, np.stack([dr.grad(lambda v: np.sum(pick(v)))(v) for v in xs]))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate_rule_with_mixed_batched_and_unbatched(no_loop, axis):
    xs, c = rand(4, 2, 3), rand(2, 3)
    f = lambda v: np.concatenate([v, c, v * 2.0], axis=axis)  # noqa: E731
    close(dr.vmap(f)(xs), np.stack([f(v) for v in xs]))
    g = lambda v: np.stack([c, v], axis=axis)  # noqa: E731
    close(dr.vmap(g)(xs), np.stack([g(v) for v in xs]))
    # the cotangent of the batched parts only
    us = rand(*dr.vmap(f)(xs).shape)
    got = dr.vmap(lambda v, u: dr.vjp(f, v)[1](u)[0])(xs, us)
    close(got, np.stack([dr.vjp(f, v)[1](u)[0] for v, u in zip(xs, us, strict=True)]))


def test_reductions_and_shapes_move_their_axes_past_the_batch(no_loop):
    xs = rand(3, 2, 4)
    for f in (lambda v: np.sum(v, axis=1), lambda v: np.max(v, axis=0, keepdims=True),
              lambda v: np.cumprod(v, axis=-1), lambda v: np.transpose(v),
              lambda v: np.reshape(v, (4, 2)), lambda v: np.broadcast_to(v[0], (3, 4)),
              lambda v: np.fft.fft(v, axis=0), lambda v: np.pad(v, ((1, 0), (0, 2)))):
        close(dr.vmap(f)(xs), np.stack([f(v) for v in xs]))


# ------------------------------------------------------------------ no rule sees the batch
CATALOGUE = Path(dr.__file__).resolve().parent / "catalogue"
_OLD_HELPERS = {"_shift", "_lift", "_batch", "unit_axes_after_batch"}


def batch_axis_mentions(source: str, filename: str = "<source>") -> list[str]:
    """Where code outside the batching rules reads the batch axes off a tangent or
    cotangent (``ndim_of(g)``, ``np.ndim(g)``, ``g.ndim``) or uses the helpers of the
    old in-rule batch handling; functions named ``*_batch`` and those passed to
    ``defbatch`` (by name, as a lambda, or as the factory that builds the rule) are the
    batching rules and may."""
    tree = ast.parse(source, filename)
    rules: set[str] = set()
    lambdas: set[int] = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "defbatch" and node.args):
            arg = node.args[0]
            if isinstance(arg, ast.Name):
                rules.add(arg.id)
            elif isinstance(arg, ast.Lambda):
                lambdas.add(id(arg))
            elif isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name):
                rules.add(arg.func.id)
    found: list[str] = []

    def is_g(n: ast.AST) -> bool:
        return isinstance(n, ast.Name) and n.id == "g"

    def visit(node: ast.AST, where: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name.endswith("_batch") or node.name in rules:
                return
            where = node.name
        if isinstance(node, ast.Lambda) and id(node) in lambdas:
            return
        line = f"{filename}:{getattr(node, 'lineno', '?')} in {where}"
        if isinstance(node, ast.Call) and node.args and is_g(node.args[0]):
            fn = node.func
            if isinstance(fn, ast.Name) and fn.id == "ndim_of":
                found.append(f"{line}: ndim_of(g)")
            if (isinstance(fn, ast.Attribute) and fn.attr == "ndim"
                    and isinstance(fn.value, ast.Name) and fn.value.id in ("np", "numpy")):
                found.append(f"{line}: np.ndim(g)")
        if isinstance(node, ast.Attribute) and node.attr == "ndim" and is_g(node.value):
            found.append(f"{line}: g.ndim")
        if isinstance(node, ast.Name) and node.id in _OLD_HELPERS:
            found.append(f"{line}: {node.id}")
        if isinstance(node, ast.Attribute) and node.attr in _OLD_HELPERS:
            found.append(f"{line}: .{node.attr}")
        for child in ast.iter_child_nodes(node):
            visit(child, where)

    visit(tree, "<module>")
    return found


def test_no_catalogue_rule_mentions_batch_axes():
    found = []
    for path in sorted(CATALOGUE.glob("*.py")):
        found += batch_axis_mentions(path.read_text(), path.name)
    assert not found, ("JVP/VJP rules are written for one example; the batch axis is the "
                       f"batching rules' business (defbatch): {found}")


def test_the_batch_axis_scan_finds_what_it_looks_for():
    bad = '''
def _foo_vjp(g, ans, x):
    return np.sum(g, axis=tuple(range(ndim_of(g) - ndim_of(x))))
foo.defjvp(lambda g, ans, x: g * np.ndim(g))
def _bar_jvp(g, ans, x):
    return _shift(g.ndim)
'''
    found = batch_axis_mentions(bad)
    assert [f.split(": ")[-1] for f in found] == ["ndim_of(g)", "np.ndim(g)", "_shift", "g.ndim"]
    assert "_foo_vjp" in found[0] and "<module>" in found[1]
    fine = '''
def _foo_batch(args, batched, axis):
    g = args[0]
    return ndim_of(g) - 1
foo.defbatch(lambda args, batched: np.ndim(g))
foo.defbatch(_rule_for)
def _rule_for(args, batched):
    return g.ndim
bar.defbatch(make_rule(bar))
def make_rule(p):
    def rule(args, batched):
        return ndim_of(g)
    return rule
def _vjp(g, ans, x):
    return ndim_of(x) + np.ndim(ans)
'''
    assert batch_axis_mentions(fine) == []


def _write_from(x):
    y = x * 1.0
    y[np.argmax(x):] = 0.0
    return y


@pytest.mark.parametrize("f", [lambda x: np.sum(x[np.argmax(x):]), _write_from,
                               lambda x: np.roll(x, np.argmax(x)),
                               lambda x: np.sum(x[:int(np.argmax(x))])],
                         ids=["slice-read", "slice-write", "roll", "int"])
def test_a_batched_slice_bound_is_named_as_such(f):
    # red-team probe: a per-example slice bound under vmap reported a conversion that
    # "would drop a derivative" (there is none), with advice about math.* and float()
    X = np.random.default_rng(21).standard_normal((3, 5))
    [f(x.copy()) for x in X]  # plain NumPy runs each
    with pytest.raises(BatchedValueError, match=r"dualrev\.vmap: (a batched value used as "
                                                 r"an index or a slice bound|int\(\) of a "
                                                 r"batched value)"):
        dr.vmap(f)(X)

