"""Data on Dask, parameters on NumPy, through every transform: the derivatives equal the
NumPy-data ones (and finite differences), what comes back is lazy, nothing is computed
while a transform runs (a counting scheduler says so), value and gradient share one
``dask.compute``, and the memory of a gradient over lazily generated data is bounded by
the chunk size. docs/dask.md, "Data on Dask"."""

from __future__ import annotations

import contextlib
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.special
import scipy.stats

import dualrev as dr
from tests.extras import need

pytestmark = pytest.mark.extras

dask = need("dask")
da = need("dask.array")


# ----------------------------------------------------------------------------- helpers
class Computes:
    """Counts the graphs handed to the scheduler (one per ``compute``/``dask.compute``)."""

    def __init__(self) -> None:
        self.n = 0

    def get(self, dsk, keys, **kwargs):
        self.n += 1
        return dask.get(dsk, keys, **kwargs)


@contextlib.contextmanager
def counting():
    c = Computes()
    with dask.config.set(scheduler=c.get):
        yield c


def _data(n=600, d=4, chunk=150, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w_true = rng.normal(size=d)
    y01 = (rng.random(n) < scipy.special.expit(X @ w_true)).astype(float)
    counts = rng.poisson(np.exp(0.3 * X @ w_true)).astype(float)
    return X, y01, counts


XN, YN, CN = _data()
X = da.from_array(XN, chunks=(150, 4))
Y = da.from_array(YN, chunks=150)
C = da.from_array(CN, chunks=150)
W = np.array([0.3, -0.2, 0.5, 0.1])


def least_squares(w, X, y):
    return np.sum((X @ w - y) ** 2) / X.shape[0]


def logistic(w, X, y):
    z = X @ w
    return np.mean(np.logaddexp(0.0, z) - y * z)


def poisson(w, X, c):
    z = X @ w
    return np.sum(np.exp(z) - c * z)


def intercept(w, X, y):
    # the first parameter is an intercept: indexing the NumPy parameters scatters a
    # Dask cotangent back (a basic and an advanced index)
    z = w[0] + X[:, 1:] @ w[1:]
    return np.mean(np.logaddexp(0.0, z) - y * z) + 0.1 * np.sum(w[[1, 3, 3]] ** 2)


def field(w, X, y):
    # a chunked field: where, einsum, mean along an axis, slices of the data
    u = np.einsum("ij,j->i", X, w)
    s = np.where(X[:, 0] > 0, np.tanh(u), u ** 2 / 10)
    return np.mean(s * y) + np.sum(np.mean(X * w, axis=0) ** 2) + np.sum(X[::7, 2] * u[::7])


def logsumexp(w, X, y):
    return scipy.special.logsumexp(X @ w) + 0.5 * np.linalg.norm(X[:, :2] @ w[:2])


LOSSES = {"least_squares": (least_squares, Y), "logistic": (logistic, Y),
          "poisson": (poisson, C), "intercept": (intercept, Y), "field": (field, Y),
          "logsumexp": (logsumexp, Y)}
NUMPY_OF = {id(Y): YN, id(C): CN}


def _both(name):
    f, y = LOSSES[name]
    return (lambda w: f(w, X, y)), (lambda w: f(w, XN, NUMPY_OF[id(y)]))


def _fd_grad(f, w, h=1e-6):
    return np.array([(f(w + h * e) - f(w - h * e)) / (2 * h) for e in np.eye(w.size)])


def _lazy(tree):
    leaves = dr.tree_flatten(tree)[0] if not isinstance(tree, da.Array) else [tree]
    return all(isinstance(v, da.Array) for v in leaves)


V = np.array([1.0, -0.5, 0.25, 2.0])
# each transform as (call on the Dask-data loss, call on the NumPy-data loss)
TRANSFORMS = {
    "grad": lambda f: dr.grad(f)(W),
    "value_and_grad": lambda f: dr.value_and_grad(f)(W),
    "jvp": lambda f: dr.jvp(f, (W,), (V,)),
    "vjp": lambda f: (lambda out, pb: (out, pb(np.float64(1.5))))(*dr.vjp(f, W)),
    "hvp": lambda f: dr.hvp(f)(W, V),
    "jacfwd": lambda f: dr.jacfwd(f)(W),
    "jacrev": lambda f: dr.jacrev(f)(W),
    "jacobian": lambda f: dr.jacobian(f)(W),
    "hessian": lambda f: dr.hessian(f)(W),
    "jacfwd_of_grad": lambda f: dr.jacfwd(dr.grad(f))(W),
    "vmap_of_grad": lambda f: dr.vmap(dr.grad(f))(np.stack([W, 0.5 * W, -W])),
}


# ------------------------------------------------------------- every transform, lazily
@pytest.mark.parametrize("transform", list(TRANSFORMS))
@pytest.mark.parametrize("loss", list(LOSSES))
def test_transform_over_dask_data_is_lazy_and_equals_numpy(loss, transform):
    f_dask, f_np = _both(loss)
    run = TRANSFORMS[transform]
    with counting() as c:
        lazy = run(f_dask)
    assert c.n == 0, f"{transform} computed {c.n} graphs while it ran"
    assert _lazy(lazy)
    with counting() as c:
        got = dask.compute(lazy)[0]
    assert c.n == 1
    want = run(f_np)
    got_leaves, got_def = dr.tree_flatten(got)
    want_leaves, want_def = dr.tree_flatten(want)
    assert got_def == want_def
    for g, w in zip(got_leaves, want_leaves, strict=True):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


# More operations a loss over data uses, each through grad and hessian (the sweep that
# found: a zero Hessian, a gradient constant in w, came back as a Dask array jacfwd
# refused; prod's VJP handed Dask's transpose an array of axes; the VJP of np.diag's
# scatter gathered with 2-D fancy indices, which Dask lacks; solve's batched right-hand
# sides (hessian) reached Dask's 2-D-only solve; astype(float32) computed the data)
_rng = np.random.default_rng(5)
SX_N, SY_N, SF_N = _rng.normal(size=(60, 3)), _rng.random(60), _rng.normal(size=(12, 10))
SX, SY = da.from_array(SX_N, chunks=(15, 3)), da.from_array(SY_N, chunks=15)
SF = da.from_array(SF_N, chunks=(4, 5))
SW = np.array([0.3, -0.2, 0.5])
SWEEP = {
    "clip": lambda w, X, y, F: np.sum(np.clip(X @ w, -0.2, 0.2)),
    "hinge": lambda w, X, y, F: np.sum(np.maximum(0, 1 - y * (X @ w))),
    "abs": lambda w, X, y, F: np.sum(np.abs(X @ w - y)),
    "log_expit": lambda w, X, y, F: np.sum(np.log(scipy.special.expit(X @ w))),
    "xlogy": lambda w, X, y, F: np.sum(scipy.special.xlogy(y, scipy.special.expit(X @ w))),
    "var_std": lambda w, X, y, F: np.var(X @ w) + np.std(X * w),
    "tensordot": lambda w, X, y, F: np.sum(np.tensordot(X, w, axes=1) ** 2),
    "outer": lambda w, X, y, F: np.sum(np.outer(X @ w, w)),
    "solve_diag": lambda w, X, y, F: np.sum(np.linalg.solve(X.T @ X + np.diag(w ** 2), w)),
    "solve_matrix": lambda w, X, y, F: np.sum(np.linalg.solve(X.T @ X + np.eye(3),
                                                              np.outer(w, w))),
    "diff": lambda w, X, y, F: np.sum(np.diff(X @ w) ** 2),
    "stack": lambda w, X, y, F: np.sum(np.stack([X @ w, y]) ** 2),
    "reshape": lambda w, X, y, F: np.sum((X * w).reshape(-1) ** 3),
    "max_axis": lambda w, X, y, F: np.sum(np.max(X * w, axis=1)),
    "prod": lambda w, X, y, F: np.sum(np.prod(1 + 0.1 * X * w, axis=1)),
    "field_linear": lambda w, X, y, F: (np.sum((F[1:, :] - F[:-1, :]) ** 2 * w[0])
                                        + np.sum(np.roll(F, 1, axis=1) * F * w[1])),
    "field_exp": lambda w, X, y, F: np.sum(F * np.exp(w[2]) - w[0] ** 2 * F ** 2),
    "norm_logpdf": lambda w, X, y, F: np.sum(scipy.stats.norm.logpdf(y, loc=X @ w,
                                                                     scale=np.exp(w[0]))),
    "power": lambda w, X, y, F: np.sum(np.abs(X @ w) ** 1.5),
    "centred": lambda w, X, y, F: np.sum((X - np.mean(X, axis=0, keepdims=True)) @ w ** 2),
    "quadratic_form": lambda w, X, y, F: w @ (X.T @ (X @ w)),
    "cumsum": lambda w, X, y, F: np.sum(np.cumsum(X @ w) ** 2),
    "minimum": lambda w, X, y, F: np.sum(np.minimum(X @ w, y)),
    "average": lambda w, X, y, F: np.average((X @ w) ** 2, weights=y),
    "float32": lambda w, X, y, F: np.sum((X.astype(np.float32) @ w.astype(np.float32)) ** 2),
    "int_data": lambda w, X, y, F: np.sum((X > 0).astype(int) @ w ** 2),
    "hypot": lambda w, X, y, F: np.sum(np.hypot(X @ w, y)),
}


@pytest.mark.parametrize("transform", [dr.grad, dr.hessian])
@pytest.mark.parametrize("op", list(SWEEP))
def test_operations_over_dask_data(op, transform):
    f = SWEEP[op]
    with counting() as c:
        got = transform(lambda w: f(w, SX, SY, SF))(SW)
    assert c.n == 0
    want = transform(lambda w: f(w, SX_N, SY_N, SF_N))(SW)
    if isinstance(got, np.ndarray):
        # only a derivative that does not depend on the data at all comes back in NumPy:
        # the zero Hessian of a piecewise-linear loss
        assert transform is dr.hessian and not np.any(want)
    else:
        assert isinstance(got, da.Array)
        got = got.compute()
    assert got.dtype == want.dtype
    tol = 1e-5 if op == "float32" else 1e-10
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_solve_with_a_stack_of_dask_matrices_is_refused():
    S = da.from_array(np.stack([np.eye(3), 2 * np.eye(3)]), chunks=(1, 3, 3))
    with pytest.raises(dr.DualrevError, match=r"stack of Dask matrices.*A\.compute\(\)"):
        dr.grad(lambda w: np.sum(np.linalg.solve(S, w)))(SW)


@pytest.mark.parametrize("loss", list(LOSSES))
def test_numpy_data_gradient_and_hessian_match_finite_differences(loss):
    # the reference the Dask results are compared with is itself checked
    _, f_np = _both(loss)
    np.testing.assert_allclose(dr.grad(f_np)(W), _fd_grad(f_np, W), rtol=1e-6, atol=1e-7)
    H_fd = np.array([_fd_grad(lambda u, e=e: float(dr.grad(f_np)(u) @ e), W)
                     for e in np.eye(W.size)])
    np.testing.assert_allclose(dr.hessian(f_np)(W), H_fd, rtol=1e-5, atol=1e-6)


def test_gradient_keeps_the_parameters_shape_and_the_data_chunks_stay():
    g = dr.grad(lambda w: logistic(w, X, Y))(W)
    assert g.shape == W.shape and g.dtype == np.float64
    # a field parameter per row: its gradient is chunked like the data's rows
    b = np.zeros(XN.shape[0])
    gb = dr.grad(lambda b: np.sum((X @ W + b - Y) ** 2))(b)
    # (b is NumPy: the lazy gradient follows the data's chunking of the rows)
    assert isinstance(gb, da.Array) and gb.chunks == (X.chunks[0],)
    np.testing.assert_allclose(gb.compute(), 2 * (XN @ W + b - YN), rtol=1e-12)


def test_numpy_arrays_closed_over_stay_numpy_inside_dasks_graph():
    # Dask copies a closed-over ndarray into its graph (from_array) with NumPy's
    # constructors: that copy was made a traced buffer of the running transform, so the
    # lazy gradient held a tracer and raised EscapedTracerError when computed
    w_fixed = np.array([1.0, -2.0, 0.5, 0.25])
    g = dr.grad(lambda b: np.sum((X @ w_fixed + b) ** 2))(np.zeros(XN.shape[0]))
    np.testing.assert_allclose(g.compute(), 2 * XN @ w_fixed, rtol=1e-12)
    g = dr.grad(lambda s: np.sum(X @ (s * w_fixed)))(np.float64(2.0))
    np.testing.assert_allclose(g.compute(), np.sum(XN @ w_fixed), rtol=1e-12)


@pytest.mark.parametrize("transform", [dr.jacfwd, dr.jacobian, dr.jacrev])
def test_jacobian_of_per_row_residuals_is_lazy(transform):
    # a Jacobian with a row per data row: forward mode (jacfwd, and jacobian, which
    # chooses it for more outputs than inputs) keeps the data's chunks of rows
    r = lambda X, y: (lambda w: np.tanh(X @ w) - y)
    with counting() as c:
        J = transform(r(X, Y))(W)
    assert c.n == 0 and isinstance(J, da.Array)
    if transform is not dr.jacrev:
        assert J.chunks[0] == X.chunks[0]
    want = (1 - np.tanh(XN @ W) ** 2)[:, None] * XN  # closed form
    np.testing.assert_allclose(J.compute(), want, rtol=1e-12)


def test_vmap_over_the_rows_of_dask_data():
    f = lambda x: np.sum(np.sin(x) * W)
    with counting() as c:
        v = dr.vmap(f)(X)
        G = dr.vmap(dr.grad(f))(X)
    assert c.n == 0 and isinstance(v, da.Array) and isinstance(G, da.Array)
    np.testing.assert_allclose(v.compute(), np.sin(XN) @ W, rtol=1e-12)
    np.testing.assert_allclose(G.compute(), np.cos(XN) * W, rtol=1e-12)


def test_data_on_dask_in_args_and_has_aux():
    def f(w, X, y):
        z = X @ w
        return np.sum((z - y) ** 2), {"pred": z}

    (v, aux), g = dr.value_and_grad(f, has_aux=True)(W, X, Y)
    assert _lazy([v, g, aux["pred"]])
    (vn, auxn), gn = dr.value_and_grad(f, has_aux=True)(W, XN, YN)
    v, g, pred = dask.compute(v, g, aux["pred"])
    np.testing.assert_allclose(v, vn, rtol=1e-12)
    np.testing.assert_allclose(g, gn, rtol=1e-12)
    np.testing.assert_allclose(pred, auxn["pred"], rtol=1e-12)


# ------------------------------------------------------------------ one dask.compute
def _counting_loader(n_chunks, rows, d, seed):
    calls = []

    def load(i):
        calls.append(i)
        rng = np.random.default_rng([seed, i])
        return rng.normal(size=(rows, d))

    parts = [da.from_delayed(dask.delayed(load)(i), shape=(rows, d), dtype=float)
             for i in range(n_chunks)]
    return da.concatenate(parts, axis=0), calls, load


def test_value_and_grad_compute_together_load_each_chunk_once():
    Xl, calls, load = _counting_loader(6, 100, 3, seed=1)
    w = np.array([0.5, -1.0, 0.25])
    loss = lambda w: np.mean(np.logaddexp(0.0, Xl @ w) - 0.5 * (Xl @ w))
    v, g = dr.value_and_grad(loss)(w)
    assert calls == []  # nothing loaded by the transform
    with dask.config.set(scheduler="sync"):
        v_c, g_c = dask.compute(v, g)
    assert sorted(calls) == list(range(6))  # each chunk loaded once for both
    Xn = np.concatenate([load(i) for i in range(6)])
    vn, gn = dr.value_and_grad(lambda w: np.mean(np.logaddexp(0.0, Xn @ w) - 0.5 * (Xn @ w)))(w)
    np.testing.assert_allclose(v_c, vn, rtol=1e-12)
    np.testing.assert_allclose(g_c, gn, rtol=1e-12)
    # two computes load every chunk twice: what one dask.compute saves
    calls.clear()
    with dask.config.set(scheduler="sync"):
        v.compute()
        g.compute()
    assert len(calls) == 12


def test_hvp_and_gradient_in_one_compute_load_each_chunk_once():
    Xl, calls, _ = _counting_loader(4, 50, 3, seed=2)
    w, v = np.array([0.1, 0.2, -0.3]), np.array([1.0, 0.0, -1.0])
    loss = lambda w: np.sum(np.log1p(np.exp(Xl @ w)))
    g = dr.grad(loss)(w)
    hv = dr.hvp(loss)(w, v)
    with dask.config.set(scheduler="sync"):
        dask.compute(g, hv)
    assert sorted(calls) == list(range(4))


def test_scatter_of_a_dask_cotangent_keeps_each_position_apart():
    # a gather's VJP writes the Dask cotangent into Dask's own zeros: repeated positions
    # summed, and a nan in one position stays there (a product with a 0/1 selection
    # matrix, tried first, spread it to every position through 0 * nan)
    b = np.linspace(0.0, 1.0, XN.shape[0])
    g = dr.grad(lambda b: np.sum(X[1:, 0] * b[1:] ** 2))(b)
    assert isinstance(g, da.Array)
    np.testing.assert_allclose(g.compute(), np.r_[0.0, 2 * XN[1:, 0] * b[1:]], rtol=1e-12)
    g = dr.grad(lambda b: np.sum(X[:3, 0] * b[[0, 0, 5]]) + np.sum(X[3:5, 1] * b[[7, 2]]))(b)
    want = np.zeros_like(b)
    want[0], want[5], want[7], want[2] = XN[0, 0] + XN[1, 0], XN[2, 0], XN[3, 1], XN[4, 1]
    np.testing.assert_allclose(g.compute(), want, rtol=1e-12)
    # vmap of a gradient: a batch of cotangents scattered at once
    G = dr.vmap(dr.grad(lambda b: np.sum(X[:3, 0] * b[[0, 0, 5]] ** 2)))(np.stack([b, 2 * b]))
    Gn = dr.vmap(dr.grad(lambda b: np.sum(XN[:3, 0] * b[[0, 0, 5]] ** 2)))(np.stack([b, 2 * b]))
    np.testing.assert_allclose(G.compute(), Gn, rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = dr.grad(lambda b: np.sum(np.sqrt(b[[0, 3]] * X[:2, 0] ** 2)))(b).compute()
    assert np.isnan(g[0]) or np.isinf(g[0])
    assert np.all(g[1:3] == 0) and np.all(g[4:] == 0)


# ----------------------------------------------------------------- what is refused
def test_indexing_by_a_dask_mask_is_refused_before_computing():
    loss = lambda w: np.sum((X @ w)[Y > 0.5])
    with counting() as c, pytest.raises(dr.DualrevError, match=r"np\.where\(mask, v, 0\.0\)"):
        dr.grad(loss)(W)
    assert c.n == 0
    # the rewrite it names works, lazily, and gives the masked sum's gradient
    with counting() as c:
        g = dr.grad(lambda w: np.sum(np.where(Y > 0.5, X @ w, 0.0)))(W)
    assert c.n == 0
    np.testing.assert_allclose(g.compute(), XN[YN > 0.5].sum(axis=0), rtol=1e-12)


def _write_into_a_dask_buffer(w):
    buf = np.zeros_like(X)  # a Dask array: the data's, not the parameters'
    buf[0, 0] = w[0]
    return np.sum(buf * X) + np.sum(w ** 2)


@pytest.mark.parametrize("f", [
    _write_into_a_dask_buffer,
    lambda w: np.sum(da.from_array(w) * XN[0]),
    lambda w: np.sum(da.asarray(w) * XN[0]),
    lambda w: np.sum(X.map_blocks(lambda b, c: b * c, w[0])),
], ids=["setitem", "from_array", "asarray", "map_blocks"])
def test_a_traced_value_put_into_a_dask_graph_is_refused(f):
    # Dask would keep it as an opaque constant of its graph: the gradient through it was
    # silently lost (the write's d/dw0 = X[0, 0] came back as 0, with no error)
    with pytest.raises(dr.TracerConversionError, match="Dask task graph"):
        dr.grad(f)(W)


def test_writes_into_a_buffer_made_from_the_parameters_keep_their_derivative():
    def f(w):
        buf = np.zeros_like(w)  # the rewrite the refusal names
        buf[0] = w[0] * 2.0
        return np.sum(buf * (X[:4, 0] + 1.0)) + np.sum(w ** 2)

    g = dr.grad(f)(W)
    expected = 2.0 * W
    expected[0] += 2.0 * (XN[0, 0] + 1.0)
    np.testing.assert_allclose(np.asarray(g), expected, rtol=1e-13)


def test_float_of_a_dask_valued_loss_is_refused():
    with pytest.raises(dr.TracerConversionError, match="float"):
        dr.grad(lambda w: float(np.sum(X @ w)) * w[0])(W)


def test_python_branch_on_a_dask_value_computes_it_once_as_dask_does():
    # bool() of a Dask array computes it (Dask's own behaviour); a branch on a traced
    # value does the same, once, and the derivative is that of the branch taken
    def f(w):
        s = np.sum(X @ w)
        return s if s > 0 else -s

    with counting() as c:
        g = dr.grad(f)(W)
    assert c.n == 1
    sign = np.sign(np.sum(XN @ W))
    np.testing.assert_allclose(g.compute(), sign * XN.sum(axis=0), rtol=1e-12)


def test_sort_of_dask_values_computes_with_dasks_warning():
    # Dask has no sort: NumPy's runs on the computed values, which Dask warns about
    with pytest.warns(FutureWarning, match="not implemented by Dask"):
        g = dr.grad(lambda w: np.sum(np.sort(X @ w)[:10]))(W)
    gn = dr.grad(lambda w: np.sum(np.sort(XN @ w)[:10]))(W)
    np.testing.assert_allclose(np.asarray(g), gn, rtol=1e-12)


def test_nonfinite_lazy_derivative_warns_when_computed():
    # sqrt at 0: the derivative is infinite. The transform cannot look without computing
    # everything, so the warning comes when the result is computed, saying so
    f = lambda w: np.sum(np.sqrt((X[:, 0] * w[0]) ** 2 + w[1] ** 2))
    w = np.array([0.0, 0.0, 1.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", dr.NonFiniteDerivativeWarning)
        g = dr.grad(f)(w)
    with pytest.warns(dr.NonFiniteDerivativeWarning, match="computed") as seen:
        got = g.compute()
    ours = [w.message for w in seen if w.category is dr.NonFiniteDerivativeWarning]
    assert ours and all(m.cause == "lazy" for m in ours)
    with pytest.warns(dr.NonFiniteDerivativeWarning):
        want = dr.grad(lambda w: np.sum(np.sqrt((XN[:, 0] * w[0]) ** 2 + w[1] ** 2)))(w)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[np.isfinite(want)], want[np.isfinite(want)])
    # forward mode says so
    _, t = dr.jvp(f, (w,), (np.array([1.0, 0.0, 0.0, 0.0]),))
    with pytest.warns(dr.NonFiniteDerivativeWarning) as seen:
        t.compute()
    assert {(w.message.cause, w.message.mode) for w in seen
            if w.category is dr.NonFiniteDerivativeWarning} == {("lazy", "forward")}
    # a finite lazy derivative warns nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error", dr.NonFiniteDerivativeWarning)
        dr.grad(lambda w: logistic(w, X, Y))(W).compute()


# ---------------------------------------------------------------- memory and chunks
def _generated(rows, chunk, d, seed=7):
    """``(X, y, block)``: a logistic-regression data set generated per chunk from seeded
    generators (never whole in memory), and the function making one chunk."""

    def block(i, n):
        rng = np.random.default_rng([seed, i])
        X = rng.normal(size=(n, d))
        y = (rng.random(n) < scipy.special.expit(X @ np.arange(1.0, d + 1) / d)).astype(float)
        return np.concatenate([X, y[:, None]], axis=1)

    def located(_, block_info=None):
        info = block_info[None]
        return block(info["chunk-location"][0], info["chunk-shape"][0])

    Z = da.map_blocks(located, da.empty((rows, d + 1), chunks=(chunk, d + 1)), dtype=float)
    return Z[:, :d], Z[:, d], block


def _logistic_once(X, y):
    def loss(w):
        z = X @ w
        return np.mean(np.logaddexp(0.0, z) - y * z)
    return loss


def _logistic_twice(X, y):
    # X @ w written twice: two reductions over the data in the backward pass. Before
    # the reductions' cotangents were chunked like the data, the mean's cotangent was one
    # whole-size chunk split later and Dask's scheduler held every data chunk between
    # the two (peak 148 MB, the whole data, at 3e6 rows; now 7 MB)
    return lambda w: np.mean(np.logaddexp(0.0, X @ w) - y * (X @ w))


@pytest.mark.parametrize(("form", "rows"), [(_logistic_once, 3_000_000),
                                            (_logistic_twice, 1_200_000)])
def test_gradient_memory_is_bounded_by_the_chunk_not_the_data(form, rows):
    # up to 3 * 10^6 rows x 5 columns generated per chunk (120 MB of float64, never
    # whole), chunks of 6 * 10^4 rows (2.4 MB): the peak that tracemalloc traces (NumPy
    # reports its buffers to it) while value and gradient are computed is a few chunks,
    # and does not grow with the rows (measured 18-20 MB at 1.5e6, 3e6 and 6e6 rows for
    # the first form, 6-8.5 MB for the second). The synchronous scheduler runs one task
    # at a time (a threaded one holds a few chunks per thread). About 3 s each.
    chunk, d = 60_000, 4
    Xl, yl, block = _generated(rows, chunk, d)
    w = np.linspace(-0.5, 0.5, d)
    v, g = dr.value_and_grad(form(Xl, yl))(w)
    tracemalloc.start()
    try:
        with dask.config.set(scheduler="sync"):
            v, g = dask.compute(v, g)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    data_bytes, chunk_bytes = rows * (d + 1) * 8, chunk * (d + 1) * 8
    assert peak < 12 * chunk_bytes, (peak, chunk_bytes)
    assert peak < data_bytes / 4, (peak, data_bytes)
    # the closed form mean((expit(z) - y) x), accumulated chunk by chunk in NumPy
    ref, val = np.zeros(d), 0.0
    for i in range(rows // chunk):
        Zi = block(i, chunk)
        z = Zi[:, :d] @ w
        ref += Zi[:, :d].T @ (scipy.special.expit(z) - Zi[:, d]) / rows
        val += np.sum(np.logaddexp(0.0, z) - Zi[:, d] * z) / rows
    np.testing.assert_allclose(v, val, rtol=1e-10)
    np.testing.assert_allclose(g, ref, rtol=1e-8, atol=1e-12)


def test_complex_data_and_parameters_follow_the_numpy_results():
    # complex data (and complex parameters: JAX's convention, the conjugate of the
    # Wirtinger derivative, as with NumPy data)
    rng = np.random.default_rng(8)
    Cn = rng.normal(size=(40, 3)) + 1j * rng.normal(size=(40, 3))
    Cd = da.from_array(Cn, chunks=(10, 3))
    f = lambda C: (lambda w: np.sum(np.abs(C @ w) ** 2) + np.real(np.sum(np.exp(1j * w) * C[0])))
    for w, transforms in ((SW, (dr.grad, dr.hessian)),
                          (np.array([0.3 + 0.1j, -0.2, 0.5j]), (dr.grad, dr.jacrev))):
        for transform in transforms:
            with counting() as c:
                got = transform(f(Cd))(w)
            assert c.n == 0 and isinstance(got, da.Array)
            want = transform(f(Cn))(w)
            got = got.compute()
            assert got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # |C w|^2 for real w: the gradient 2 Re(C^H C) w, in closed form
    np.testing.assert_allclose(dr.grad(lambda w: np.sum(np.abs(Cd @ w) ** 2))(SW).compute(),
                               2 * np.real(Cn.conj().T @ Cn) @ SW, rtol=1e-10)


def test_replay_runs_a_dask_valued_function_dynamically():
    # dualrev.replay records NumPy programs: a Dask result is refused by the recording,
    # and the call runs as it is (lazy, the same values), said in its stats
    r = dr.replay(dr.value_and_grad(lambda w: logistic(w, X, Y)))
    for w in (W, 2 * W):
        with counting() as c:
            v, g = r(w)
        assert c.n == 0 and isinstance(g, da.Array)
        vn, gn = dr.value_and_grad(lambda w: logistic(w, XN, YN))(w)
        v, g = dask.compute(v, g)
        np.testing.assert_allclose(g, gn, rtol=1e-12)
        np.testing.assert_allclose(v, vn, rtol=1e-12)
    assert r.stats.records == 0 and r.stats.dynamic == 2
    assert "return arrays and numbers" in r.stats.dynamic_reasons[0]
