"""dualrev.optimize over Dask data: each evaluation computes value and gradient in one
``dask.compute``, Hessian-vector products are computed per call, SciPy sees NumPy, and the
fit equals the NumPy-data fit; persisted data is loaded once for the whole fit.
docs/dask.md, "Optimizing over Dask data"."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import scipy.special

import dualrev as dr
from dualrev import optimize
from tests.extras import need

pytestmark = pytest.mark.extras

dask = need("dask")
da = need("dask.array")

ROWS, D, CHUNK = 100_000, 5, 25_000


class Computes:
    def __init__(self) -> None:
        self.n = 0

    def get(self, dsk, keys, **kwargs):
        self.n += 1
        return dask.threaded.get(dsk, keys, **kwargs)


@contextlib.contextmanager
def counting():
    c = Computes()
    with dask.config.set(scheduler=c.get):
        yield c


def _chunk(i: int) -> np.ndarray:
    """Chunk ``i`` of the data set: features and a 0/1 label, from a seeded generator."""
    rng = np.random.default_rng([11, i])
    X = rng.normal(size=(CHUNK, D))
    w_true = np.array([1.0, -2.0, 0.5, 0.0, 0.25])
    y = (rng.random(CHUNK) < scipy.special.expit(X @ w_true - 0.3)).astype(float)
    return np.concatenate([X, y[:, None]], axis=1)


def _loaded():
    """The data as Dask arrays read by a counting loader (one task per chunk)."""
    calls: list[int] = []

    def load(i):
        calls.append(i)
        return _chunk(i)

    parts = [da.from_delayed(dask.delayed(load)(i), shape=(CHUNK, D + 1), dtype=float)
             for i in range(ROWS // CHUNK)]
    Z = da.concatenate(parts, axis=0)
    return Z[:, :D], Z[:, D], calls


ZN = np.concatenate([_chunk(i) for i in range(ROWS // CHUNK)])
XN, YN = ZN[:, :D], ZN[:, D]


def logistic(X, y):
    def loss(p):
        z = X @ p["w"] + p["b"]
        return np.mean(np.logaddexp(0.0, z) - y * z) + 1e-4 * np.sum(p["w"] ** 2)
    return loss


X0 = {"w": np.zeros(D), "b": np.zeros(())}


@pytest.fixture(scope="module")
def numpy_fit():
    res = optimize.minimize(logistic(XN, YN), X0, method="newton-cg",
                            options={"xtol": 1e-10})
    assert res.success
    # the optimum is a stationary point of the loss (closed-form gradient)
    z = XN @ res.x["w"] + res.x["b"]
    r = scipy.special.expit(z) - YN
    np.testing.assert_allclose(XN.T @ r / ROWS + 2e-4 * res.x["w"], 0.0, atol=1e-7)
    np.testing.assert_allclose(np.mean(r), 0.0, atol=1e-7)
    return res


def _same_fit(res, method, numpy_fit, **kw):
    """The Dask-data fit takes the NumPy-data fit's steps (same iterates to rounding) and
    lands near the tight optimum."""
    ref = optimize.minimize(logistic(XN, YN), X0, method=method, **kw)
    assert res.nit == ref.nit
    for k in ("w", "b"):
        np.testing.assert_allclose(res.x[k], ref.x[k], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(res.x[k], numpy_fit.x[k], atol=1e-5)


@pytest.mark.parametrize("method", ["bfgs", "l-bfgs-b"])
def test_value_and_gradient_methods_compute_once_per_evaluation(method, numpy_fit):
    X, y, calls = _loaded()
    with counting() as c:
        options = {"gtol": 1e-8} if method == "bfgs" else {"gtol": 1e-10, "ftol": 1e-15}
        res = optimize.minimize(logistic(X, y), X0, method=method, options=options)
    assert res.success, res.message
    assert isinstance(res.x["w"], np.ndarray) and isinstance(res.jac["w"], np.ndarray)
    # one dask.compute per evaluation of value and gradient (two before: float(value)
    # and np.asarray(gradient) each computed the shared graph), and each computes loads
    # every chunk once
    assert c.n == res.nfev == res.njev
    assert len(calls) == res.nfev * (ROWS // CHUNK)
    _same_fit(res, method, numpy_fit, options=options)


@pytest.mark.parametrize("method", ["newton-cg", "trust-krylov"])
def test_hessian_methods_compute_each_hessian_once(method, numpy_fit):
    X, y, _ = _loaded()
    with counting() as c:
        res = optimize.minimize(logistic(X, y), X0, method=method)
    assert res.success, res.message
    # value and gradient once per evaluation; up to DENSE_CONSTRAINT_HESSIAN_MAX
    # variables the Hessian is formed once per iterate and SciPy's inner products reuse it
    assert c.n == res.nfev + res.nit
    _same_fit(res, method, numpy_fit)


def test_hessian_vector_products_are_computed_per_call(monkeypatch, numpy_fit):
    # above DENSE_CONSTRAINT_HESSIAN_MAX variables no matrix is formed: each product is
    # one compute
    monkeypatch.setattr(optimize, "DENSE_CONSTRAINT_HESSIAN_MAX", 0)
    X, y, _ = _loaded()
    with counting() as c:
        res = optimize.minimize(logistic(X, y), X0, method="newton-cg")
    assert res.success, res.message
    assert c.n == res.nfev + res.nhev
    _same_fit(res, "newton-cg", numpy_fit)


def test_persisted_data_is_loaded_once_for_the_whole_fit(numpy_fit):
    # what each iteration reuses is the data: persisted, it is loaded once, and every
    # iteration's single compute reads it from memory
    X, y, calls = _loaded()
    with dask.config.set(scheduler="threads"):
        Z = dask.persist(da.concatenate([X, y[:, None]], axis=1))[0]
    assert sorted(calls) == list(range(ROWS // CHUNK))
    Xp, yp = Z[:, :D], Z[:, D]
    with counting() as c:
        res = optimize.minimize(logistic(Xp, yp), X0, method="l-bfgs-b")
    assert res.success, res.message
    assert c.n == res.nfev
    assert sorted(calls) == list(range(ROWS // CHUNK))  # nothing loaded again
    _same_fit(res, "l-bfgs-b", numpy_fit)


def test_jac_true_objective_returning_lazy_value_and_gradient():
    # SciPy's jac=True convention with the user's own (hand-written, dask-glm style)
    # gradient: both come back lazy and are computed together
    X, y, calls = _loaded()

    def fun(w):
        z = X @ w
        r = scipy.special.expit(z) - y
        return np.mean(np.logaddexp(0.0, z) - y * z), X.T @ r / ROWS

    with counting() as c:
        res = optimize.minimize(fun, np.zeros(D), jac=True, method="bfgs")
    assert res.success, res.message
    assert c.n == res.nfev
    exact = optimize.minimize(lambda w: np.mean(np.logaddexp(0.0, XN @ w) - YN * (XN @ w)),
                              np.zeros(D), method="bfgs")
    np.testing.assert_allclose(res.x, exact.x, atol=1e-5)


def test_least_squares_over_dask_data_matches_numpy():
    # the residual vector and its Jacobian are computed whole (rows x parameters, as
    # SciPy needs them in memory): one compute per call SciPy makes
    t = np.linspace(0.0, 4.0, 2000)
    yv = 2.0 * np.exp(-0.7 * t) + 0.01 * np.random.default_rng(3).normal(size=t.size)
    T, Y = da.from_array(t, chunks=500), da.from_array(yv, chunks=500)
    with counting() as c:
        res = optimize.least_squares(lambda p: p[0] * np.exp(-p[1] * T) - Y,
                                     np.array([1.0, 1.0]))
    ref = optimize.least_squares(lambda p: p[0] * np.exp(-p[1] * t) - yv, np.array([1.0, 1.0]))
    assert res.success and isinstance(res.x, np.ndarray)
    np.testing.assert_allclose(res.x, ref.x, rtol=1e-10)
    assert c.n == res.nfev + res.njev
    # the closed-form normal equations hold at the solution
    a, k = res.x
    r = a * np.exp(-k * t) - yv
    J = np.stack([np.exp(-k * t), -a * t * np.exp(-k * t)], axis=1)
    np.testing.assert_allclose(J.T @ r, 0.0, atol=1e-8)


def test_minimize_without_replay_gives_the_same_fit(numpy_fit):
    X, y, _ = _loaded()
    res = optimize.minimize(logistic(X, y), X0, method="trust-krylov", replay=False)
    assert res.success
    _same_fit(res, "trust-krylov", numpy_fit)


def test_gradient_and_hvp_of_the_fitted_loss_are_lazy():
    X, y, _ = _loaded()
    loss = logistic(X, y)
    p = {"w": np.full(D, 0.1), "b": np.array(0.2)}
    g = dr.grad(loss)(p)
    assert isinstance(g["w"], da.Array) and isinstance(g["b"], da.Array)
    hv = dr.hvp(loss)(p, {"w": np.ones(D), "b": np.array(1.0)})
    g, hv = dask.compute(g, hv)
    gn = dr.grad(logistic(XN, YN))(p)
    hvn = dr.hvp(logistic(XN, YN))(p, {"w": np.ones(D), "b": np.array(1.0)})
    for k in ("w", "b"):
        np.testing.assert_allclose(g[k], gn[k], rtol=1e-10)
        np.testing.assert_allclose(hv[k], hvn[k], rtol=1e-10)
